"""Shared pytest set-up: the backend comes from KERAS_BACKEND, slow checks hide behind
--run_large."""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption(
        "--run_large", action="store_true", default=False, help="also run tests marked large"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_large"):
        return
    skip_large = pytest.mark.skip(reason="large test: pass --run_large to run it")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
