# Everything a fresh machine (Debian, Python 3.11, pip) needs, behind two targets:
#   make demo    installs keras-mimo with all backends and runs the pretrained demo (offline)
#   make test    installs keras-mimo with all backends and runs the tests once per backend
#   make bench   the throughput benchmark
#   make lint    ruff check and ruff format --check (CI runs it before the tests)
PYTHON ?= python3
BACKENDS ?= tensorflow jax torch
PYTEST_ARGS ?=
STAMP := .install-stamp

.PHONY: install demo lint format test test-large bench clean

$(STAMP): pyproject.toml
	@# Real Fashion-MNIST from Debian (MIT): the data tests and the demo read it. Needs root and apt.
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; fi
	$(PYTHON) -m pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PYTHON) -m keras_mimo.cli demo --output demo-output

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format: install
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

test: install
	PYTHON=$(PYTHON) bash .ci/test_backends.sh $(BACKENDS) -- $(PYTEST_ARGS)

test-large: install
	PYTHON=$(PYTHON) bash .ci/test_backends.sh $(BACKENDS) -- --run_large $(PYTEST_ARGS)

bench: install
	$(PYTHON) -m keras_mimo.cli bench --backends all --depth 16 --width 4 --batch 64 --warmup 1 --repeats 3

clean:
	rm -rf $(STAMP) bench-results demo-output .pytest_cache build *.egg-info
