"""What every ``keras-mimo`` command shares: the backend choice, quiet start-up, value parsers.

Nothing here imports Keras, TensorFlow or NumPy at import time: the command line must choose
the Keras backend and set TensorFlow's logging environment before either is loaded.

TensorFlow 2.21 logs a few lines while its shared libraries load, before it reads
``TF_CPP_MIN_LOG_LEVEL`` (the oneDNN notice from port.cc, cudart_stub.cc's "Could not find
cuda drivers", absl's "All log messages before absl::InitializeLog() ..."). No environment
variable silences them short of ``TF_ENABLE_ONEDNN_OPTS=0``, which changes numerics, so
:func:`quiet_environment` also filters the process' stderr while ``tensorflow`` is imported,
applying ``TF_CPP_MIN_LOG_LEVEL`` to those lines too.
"""

import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

BACKENDS = ("tensorflow", "jax", "torch")

# Set in the environment by quiet_environment(), so the benchmark's worker processes are quiet too.
QUIET_VARIABLE = "KERAS_MIMO_QUIET"

_QUIET_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ logs: fatal ones only
    "GRPC_VERBOSITY": "ERROR",  # gRPC, which TensorFlow links, logs its own start-up otherwise
}
# absl's C++ log lines: "I0000 00:00:1796308058.211841    6883 port.cc:153] message".
_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ [^\]]+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written"
_CONTINUATIONS = ("To enable the following instructions:",)  # cpu_feature_guard's second line
_SEVERITIES = "IWEF"


def set_backend(backend):
    """Makes ``backend`` the Keras backend of this process (and of the processes it starts).

    ``backend`` is one of ``BACKENDS`` or None (None leaves KERAS_BACKEND as it is). It only
    takes effect if Keras is not imported yet, so the command line calls it before anything
    imports Keras; a ValueError names an unknown backend.

    Example:
        >>> set_backend("jax")
        >>> os.environ["KERAS_BACKEND"]
        'jax'
    """
    if backend is None:
        return
    if backend not in BACKENDS:
        raise ValueError(f"--backend {backend!r} is not a Keras backend; use one of {BACKENDS}.")
    os.environ["KERAS_BACKEND"] = backend


def quiet_environment():
    """Silences TensorFlow's, gRPC's and absl's start-up logging for this process and its children.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` and ``GRPC_VERBOSITY=ERROR`` unless the user set them (oneDNN
    stays as it is: ``TF_ENABLE_ONEDNN_OPTS`` is left alone, so numerics do not change), marks
    the environment quiet for the benchmark's worker processes (``KERAS_MIMO_QUIET=1``), sets
    the ``tensorflow`` and ``absl`` Python loggers to ERROR (hiding e.g. "tf.function
    retracing" warnings) and, when TensorFlow is not imported yet, installs a one-shot import
    hook that drops the C++ log lines TensorFlow writes while it loads (see the module
    docstring). Call it before TensorFlow is imported; it is idempotent. Python warnings and
    errors still reach stderr.

    Example:
        >>> quiet_environment()
        >>> os.environ["TF_CPP_MIN_LOG_LEVEL"] in "0123"
        True
    """
    for name, value in _QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ[QUIET_VARIABLE] = "1"
    silence_tensorflow_logger()
    install_quiet_tensorflow_import()


def silence_tensorflow_logger():
    """Sets the ``tensorflow`` and ``absl`` Python loggers to ERROR; imports neither TensorFlow.

    Hides TensorFlow's Python-side warnings ("5 out of the last 5 calls to ... triggered
    tf.function retracing", deprecation notes) and absl's ``WARNING:absl:`` lines. Safe to call
    before or after TensorFlow is imported, and more than once; :func:`quiet_environment` calls
    it, and commands may call it again after importing TensorFlow.
    """
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl-py comes with Keras and TensorFlow; without it nothing logs there
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def install_quiet_tensorflow_import():
    """Filters stderr while ``tensorflow`` is first imported; returns whether a hook was installed.

    The hook removes itself when TensorFlow's import starts; it does nothing once TensorFlow is
    imported. During the import, file descriptor 2 goes to a temporary file; afterwards every
    line is written back to stderr except absl C++ log lines below ``TF_CPP_MIN_LOG_LEVEL``
    (0: all kept; 3: only fatal ones kept) and their known continuation lines. An import error
    propagates as usual, after the captured lines are written back.
    """
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietImport) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _QuietImport())
    return True


def filter_startup_lines(text, min_log_level):
    """``text`` without absl C++ log lines of a severity below ``min_log_level`` (0-3).

    Severity I (info) is level 0, W 1, E 2, F 3, as ``TF_CPP_MIN_LOG_LEVEL`` counts them: at
    level 1 info lines go, at 3 all but fatal ones. absl's "All log messages before
    absl::InitializeLog() ..." notice and the second line of TensorFlow's CPU-feature notice go
    at any level above 0. Every other line is kept as it is.

    Example:
        >>> filter_startup_lines("I0000 00:00:1.2  7 port.cc:153] oneDNN on\\nkept\\n", 3)
        'kept\\n'
    """
    if min_log_level <= 0:
        return text
    kept = []
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match and _SEVERITIES.index(match.group(1)) < min_log_level:
            continue
        if line.startswith(_ABSL_PREAMBLE) or line.startswith(_CONTINUATIONS):
            continue
        kept.append(line)
    return "".join(kept)


def min_log_level():
    """``TF_CPP_MIN_LOG_LEVEL`` as an integer 0-3 (0 when unset or not a number)."""
    try:
        return max(0, min(3, int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))))
    except ValueError:
        return 0


class _QuietImport(importlib.abc.MetaPathFinder):
    """One-shot finder: wraps the loader of ``tensorflow`` so that its import filters stderr."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader  # tools that read the loader see the real one
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        with _FilteredStderr():
            self.loader.exec_module(module)
        silence_tensorflow_logger()  # TensorFlow may have configured its logger on import

    def __getattr__(self, name):
        return getattr(self.loader, name)


class _FilteredStderr:
    """Context manager: file descriptor 2 into a temporary file, written back filtered on exit."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        self.capture = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self.capture.fileno(), 2)
        return self

    def __exit__(self, *exc_info):
        try:
            sys.stderr.flush()
        finally:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        self.capture.seek(0)
        text = self.capture.read().decode("utf-8", errors="replace")
        self.capture.close()
        text = filter_startup_lines(text, min_log_level())
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        return False


def parse_int_list(text, flag, example, minimum=None):
    """The integers of a comma-separated option value, in order.

    ``flag`` (e.g. ``"--superpositions"``) and ``example`` (e.g. ``"1,2,4"``) go into the
    ValueError raised for anything but integers, or for a value below ``minimum`` when given.

    Example:
        >>> parse_int_list("1,2,4", "--superpositions", "1,2,4")
        [1, 2, 4]
        >>> parse_int_list("1,two", "--superpositions", "1,2,4")
        Traceback (most recent call last):
        ...
        ValueError: --superpositions '1,two' must be comma-separated integers, e.g. 1,2,4.
    """
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        raise ValueError(
            f"{flag} {text!r} must be comma-separated integers, e.g. {example}."
        ) from None
    low = [value for value in values if minimum is not None and value < minimum]
    if low:
        raise ValueError(
            f"{flag} {text!r}: every value must be at least {minimum}, e.g. {example}."
        )
    return values
