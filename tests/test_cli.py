"""The ``keras-mimo`` command line: backend choice before Keras, error reporting, quiet start-up."""

import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import keras_mimo.cli.bench as cli_bench
from keras_mimo import grids
from keras_mimo.cli import build_parser, common, main

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("keras", "tensorflow", "jax", "torch")


@pytest.fixture(autouse=True)
def restore_process_state():
    """main() quiets the process (environment, loggers, an import hook): undo it after each test."""
    environ = dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "absl")}
    meta_path = list(sys.meta_path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    sys.meta_path[:] = meta_path


def python(code, env=None, **kwargs):
    """Runs ``code`` in a fresh interpreter in the repository root; returns the CompletedProcess."""
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        **kwargs,
    )


def fake_handler(monkeypatch, behaviour):
    """Makes ``keras-mimo bench`` run ``behaviour(args)`` instead of the benchmark."""
    monkeypatch.setattr(cli_bench, "run", behaviour)


# --- no Keras before the command runs -----------------------------------------------------------


def test_importing_the_cli_and_building_the_parser_imports_no_keras():
    done = python(
        """
        import sys
        import keras_mimo.cli, keras_mimo.cli.common, keras_mimo.grids
        import keras_mimo.bench.timing, keras_mimo.bench.mimoconv, keras_mimo.bench.mimoformer
        keras_mimo.cli.build_parser().parse_args(["bench"])
        print(sorted({m.split(".")[0] for m in sys.modules} & {"keras", "tensorflow", "jax",
              "torch", "numpy"}))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bench_argument_mistakes_are_reported_before_keras_is_imported(tmp_path):
    mistakes = [
        ["--backends", "nosuch"],
        ["--depth", "12"],
        ["--width", "0"],
        ["--batch", "0"],
        ["--repeats", "0"],
        ["--superpositions", "1,x"],
        ["--family", "mimoformer", "--grids", "2y2"],
        ["--family", "mimoformer", "--batch", "6"],
    ]
    done = python(
        f"""
        import sys
        from keras_mimo.cli import main
        for argv in {mistakes!r}:
            assert main(["bench", "--output", {str(tmp_path)!r}] + argv) == 2, argv
        print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert done.stderr.count("keras-mimo bench: error: ") == len(mistakes)


# --- the backend --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,backend",
    [
        (["--backend", "jax", "bench"], "jax"),
        (["--backend", "torch", "train"], "torch"),
        (["train", "--backend", "jax"], "jax"),
        (["--backend", "jax", "evaluate", "--checkpoint", "x", "--dataset", "y"], "jax"),
        (["evaluate", "--checkpoint", "x", "--dataset", "y", "--backend", "torch"], "torch"),
    ],
)
def test_the_backend_is_set_before_the_command_runs(argv, backend, monkeypatch):
    from keras_mimo.cli import evaluate, train

    seen = []

    def handler(args):
        seen.append((os.environ["KERAS_BACKEND"], getattr(args, "backend", backend)))
        return 0

    for module in (cli_bench, train, evaluate):
        monkeypatch.setattr(module, "run", handler)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert main(argv) == 0
    assert seen == [(backend, backend)]


def test_two_different_backends_are_a_user_mistake(monkeypatch, capsys):
    from keras_mimo.cli import train

    monkeypatch.setattr(train, "run", lambda args: pytest.fail("the command ran"))
    assert main(["--backend", "jax", "train", "--backend", "torch"]) == 2
    assert "--backend jax (before the command) and --backend torch" in capsys.readouterr().err


def test_an_unknown_global_backend_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--backend", "theano", "bench"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'theano'" in capsys.readouterr().err


# --- user mistakes: a message and status 2 ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ValueError("--depth 12 must be 6k + 4."),
        FileNotFoundError("no such checkpoint: runs/x/best.keras; train first."),
        NotADirectoryError("--data-dir x is a file; give its folder."),
        IsADirectoryError("--checkpoint runs/x is a folder; give the .keras file in it."),
        PermissionError("--output /root/x is not writable; choose another folder."),
    ],
)
def test_user_errors_print_one_line_and_exit_2(error, monkeypatch, capsys):
    def handler(args):
        raise error

    fake_handler(monkeypatch, handler)
    assert main(["bench"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"keras-mimo bench: error: {error}\n"
    assert captured.out == ""


def test_an_old_style_system_exit_message_is_reported_once(monkeypatch, capsys):
    def handler(args):
        raise SystemExit("keras-mimo bench: --config NAME is required (see --list).")

    fake_handler(monkeypatch, handler)
    assert main(["bench"]) == 2
    assert capsys.readouterr().err == (
        "keras-mimo bench: error: --config NAME is required (see --list).\n"
    )


def test_system_exit_with_a_status_passes_through(monkeypatch):
    def handler(args):
        raise SystemExit(3)

    fake_handler(monkeypatch, handler)
    with pytest.raises(SystemExit) as exit_info:
        main(["bench"])
    assert exit_info.value.code == 3


def test_handlers_results_become_status_0_unless_an_int(monkeypatch):
    fake_handler(monkeypatch, lambda args: [{"row": 1}])
    assert main(["bench"]) == 0
    fake_handler(monkeypatch, lambda args: 5)
    assert main(["bench"]) == 5


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    def handler(args):
        raise RuntimeError("a bug")

    fake_handler(monkeypatch, handler)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["bench"])


def test_debug_re_raises_user_errors(monkeypatch):
    def handler(args):
        raise ValueError("--depth 12 must be 6k + 4.")

    fake_handler(monkeypatch, handler)
    with pytest.raises(ValueError, match="6k"):
        main(["--debug", "bench"])


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--depth", "sixteen"])
    assert exit_info.value.code == 2
    assert "keras-mimo bench: error: argument --depth: invalid int value" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_exit_status_and_output_of_the_real_command():
    """A user mistake: status 2 and one line; a bug or --debug: status 1 and the traceback."""
    mistake = python("import sys; from keras_mimo.cli import main; sys.exit(main())", timeout=120)
    assert mistake.returncode == 2 and "required: COMMAND" in mistake.stderr
    done = subprocess.run(
        [sys.executable, "-m", "keras_mimo.cli", "bench", "--depth", "12"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == "keras-mimo bench: error: --depth 12 must be 6k + 4, e.g. 10, 16, 22 or 28.\n"
    )
    debug = subprocess.run(
        [sys.executable, "-m", "keras_mimo.cli", "--debug", "bench", "--depth", "12"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ValueError: --depth 12" in debug.stderr
    bug = python(
        """
        import sys
        import keras_mimo.cli, keras_mimo.cli.bench
        keras_mimo.cli.bench.run = lambda args: 1 / 0
        sys.exit(keras_mimo.cli.main(["bench"]))
        """
    )
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "ZeroDivisionError" in bug.stderr


# --- quiet by default ---------------------------------------------------------------------------


def test_quiet_environment_sets_defaults_and_keeps_the_users_choice(monkeypatch):
    seen = {}

    def handler(args):
        seen.update(
            {name: os.environ.get(name) for name in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}
        )
        seen["tensorflow logger"] = logging.getLogger("tensorflow").level
        seen["quiet"] = os.environ.get(common.QUIET_VARIABLE)

    fake_handler(monkeypatch, handler)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    monkeypatch.delenv(common.QUIET_VARIABLE, raising=False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    main(["bench"])
    assert seen == {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "GRPC_VERBOSITY": "DEBUG",
        "tensorflow logger": logging.ERROR,
        "quiet": "1",
    }
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ  # oneDNN, and so numerics, unchanged


def test_debug_leaves_logging_at_its_defaults(monkeypatch):
    seen = {}

    def handler(args):
        seen["level"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        seen["quiet"] = os.environ.get(common.QUIET_VARIABLE)

    fake_handler(monkeypatch, handler)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv(common.QUIET_VARIABLE, raising=False)
    main(["--debug", "bench"])
    assert seen == {"level": None, "quiet": None}


STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796308058.211841    6883 port.cc:153] oneDNN custom operations are on. You may see
I0000 00:00:1796308058.212250    6883 cudart_stub.cc:31] Could not find cuda drivers on your machine
I0000 00:00:1796308058.289973    6883 cpu_feature_guard.cc:227] This TensorFlow binary is optimized
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow
W0000 00:00:1796308058.3    6883 gpu_device.cc:2341] Cannot dlopen some GPU libraries.
E0000 00:00:1796308058.4    6883 cuda_dnn.cc:8310] Unable to register cuDNN factory
F0000 00:00:1796308058.5    6883 env.cc:1] fatal
/x/y.py:3: UserWarning: a Python warning
"""


@pytest.mark.parametrize(
    "level,kept",
    [
        (0, None),
        (1, ["W0000", "E0000", "F0000", "/x/y.py:3:"]),
        (2, ["E0000", "F0000", "/x/y.py:3:"]),
        (3, ["F0000", "/x/y.py:3:"]),
    ],
)
def test_filter_startup_lines_follows_tf_cpp_min_log_level(level, kept):
    filtered = common.filter_startup_lines(STARTUP, level)
    if kept is None:
        assert filtered == STARTUP
    else:
        assert [line.split()[0] for line in filtered.splitlines()] == kept


NOISE = (
    "absl::InitializeLog",
    "oneDNN custom operations",
    "cudart_stub.cc",
    "Could not find cuda drivers",
    "cpu_feature_guard.cc",
    "tf.function retracing",
    "WARNING:absl",
    "I0000",
)


def test_the_tensorflow_import_is_quiet_in_a_quiet_process():
    pytest.importorskip("tensorflow")
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from keras_mimo.cli.common import quiet_environment\n"
            "quiet_environment()\n"
            "import tensorflow as tf\n"
            "print(float(tf.constant(1.0) + 1))\n",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2.0\n" and done.stderr == ""


def test_the_bench_command_prints_no_tensorflow_startup_lines(tmp_path):
    pytest.importorskip("tensorflow")
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    argv = "--backends tensorflow --models wrn --depth 10 --width 1 --batch 2 --image-size 8"
    done = subprocess.run(
        [sys.executable, "-m", "keras_mimo.cli", "bench", *argv.split(), "--warmup", "0"]
        + ["--repeats", "1", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)]
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Benchmark: WRN-10-1 body, batch 2")
    assert [line.split()[:3] for line in lines[1:]] == [["tensorflow", "WideResNet", "N=1:"]]
    assert "WideResNet" in done.stdout


# --- value parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,grid",
    [("2x2", (2, 2)), ("1X4", (1, 4)), (" 4 x 2 ", (4, 2)), ("2,1", (2, 1)), ((3, 3), (3, 3))]
    + [([1, 2], (1, 2))],
)
def test_parse_grid_reads_every_spelling(value, grid):
    assert grids.parse_grid(value) == grid
    assert grids.format_grid(grid) == f"{grid[0]}x{grid[1]}"


@pytest.mark.parametrize(
    "value", ["2y2", "2x2x2", "0x2", "-1x2", "", "x", "2", "2.5x2", (2,), (2, True), None, 4]
)
def test_parse_grid_rejects_everything_else_with_the_expected_form(value):
    with pytest.raises(ValueError) as error:
        grids.parse_grid(value)
    assert str(error.value) == f"grid={value!r} must be two positive integers M x N, e.g. 2x2."


def test_parse_grids():
    assert grids.parse_grids("1x1,2x2,4x4") == [(1, 1), (2, 2), (4, 4)]
    assert grids.parse_grids(["1x2", (2, 1)]) == [(1, 2), (2, 1)]
    with pytest.raises(ValueError, match=r"^--grids '1x1,2y2': item '2y2' must be"):
        grids.parse_grids("1x1,2y2", flag="--grids")
    with pytest.raises(ValueError, match=r"^grids='1x1,': item '' must be"):
        grids.parse_grids("1x1,")
    with pytest.raises(ValueError, match="names no grid"):
        grids.parse_grids([])


def test_parse_int_list():
    assert common.parse_int_list("4,2,1", "--superpositions", "4,2,1") == [4, 2, 1]
    assert common.parse_int_list(" 1, 2", "--n", "1,2") == [1, 2]
    with pytest.raises(ValueError) as error:
        common.parse_int_list("1,,2", "--superpositions", "1,2,4")
    assert str(error.value) == (
        "--superpositions '1,,2' must be comma-separated integers, e.g. 1,2,4."
    )
    with pytest.raises(ValueError, match="every value must be at least 1"):
        common.parse_int_list("1,0", "--superpositions", "1,2,4", minimum=1)


def test_set_backend_rejects_unknown_backends():
    with pytest.raises(ValueError, match="not a Keras backend"):
        common.set_backend("theano")


def test_build_parser_lists_every_command():
    parser = build_parser()
    for command in ("bench", "train", "evaluate"):
        assert command in parser.format_help()
    args = parser.parse_args(["--backend", "jax", "--debug", "bench", "--repeats", "1"])
    assert (args.command, args.global_backend, args.debug, args.repeats) == (
        "bench",
        "jax",
        True,
        1,
    )
