"""Argument checks shared by layers, models, data pipelines and training, so every one words its
error alike."""

import math

import numpy as np


def positive_int(name, value, hint=""):
    """Returns ``value`` as an int if it is a positive integer (bools refused); else a ValueError
    naming it.

    ``hint`` is appended to the message, e.g. " (1: the penalty on every update)".
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer{hint}.")
    return int(value)


def positive_number(name, value, hint=""):
    """Returns ``value`` as a float if it is a finite number > 0 (bools refused); else a ValueError
    naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}={value!r} must be a finite number > 0{hint}.")
    return float(value)
