"""Parsing of MIMOFormer grids M x N ("2x2", "2,2", (2, 2)), without importing Keras.

The command line checks its arguments with these before any backend is loaded, and the training
code reads the grids of its configurations with the same functions, so every grid is spelt and
rejected the same way everywhere.
"""

import numbers

__all__ = ["parse_grid", "parse_grids", "format_grid"]

_EXAMPLE = "e.g. 2x2"


def parse_grid(value, name="grid"):
    """The grid ``(M, N)`` of two positive integers named by ``value``.

    ``value`` is a string ``"MxN"`` (``X`` and surrounding spaces allowed) or ``"M,N"``, or a
    pair of integers such as ``(2, 2)`` or ``[2, 2]`` (as JSON configurations hold it). Anything
    else raises a ValueError that names ``name``, the value and the expected form.

    Example:
        >>> parse_grid("2x4")
        (2, 4)
        >>> parse_grid("1,2")
        (1, 2)
        >>> parse_grid([4, 4])
        (4, 4)
        >>> parse_grid("2y2")
        Traceback (most recent call last):
        ...
        ValueError: grid='2y2' must be two positive integers M x N, e.g. 2x2.
    """
    if isinstance(value, str):
        parts = value.strip().lower().replace(",", "x").split("x")
        try:
            grid = tuple(int(part) for part in parts)
        except ValueError:
            grid = ()
    elif isinstance(value, (tuple, list)) and all(_is_integer(part) for part in value):
        grid = tuple(int(part) for part in value)
    else:
        grid = ()
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(f"{name}={value!r} must be two positive integers M x N, {_EXAMPLE}.")
    return grid


def parse_grids(text, flag="grids"):
    """The grids of a comma-separated list ``"MxN,MxN,..."``, in order, as ``(M, N)`` tuples.

    ``flag`` names the option in the error message: a flag such as ``"--grids"`` reads
    ``--grids '1x1,2y2': ...``, a plain name reads ``grids='1x1,2y2': ...``. A list or tuple of
    grids is accepted as well (each item as :func:`parse_grid` takes it).

    Example:
        >>> parse_grids("1x1,2x2,4x4")
        [(1, 1), (2, 2), (4, 4)]
        >>> parse_grids("1x1,2by2", flag="--grids")
        Traceback (most recent call last):
        ...
        ValueError: --grids '1x1,2by2': item '2by2' must be two positive integers M x N, e.g. \
2x2; several grids are separated by commas, e.g. 1x1,2x2,4x4.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    grids = []
    for item in items:
        try:
            grids.append(parse_grid(item))
        except ValueError:
            shown = f"{flag} {text!r}" if flag.startswith("-") else f"{flag}={text!r}"
            raise ValueError(
                f"{shown}: item {item!r} must be two positive integers M x N, {_EXAMPLE}; "
                "several grids are separated by commas, e.g. 1x1,2x2,4x4."
            ) from None
    if not grids:
        raise ValueError(f"{flag}={text!r} names no grid; give e.g. 1x1,2x2,4x4.")
    return grids


def format_grid(grid):
    """The text ``"MxN"`` of a grid ``(M, N)``: the inverse of :func:`parse_grid`.

    Example:
        >>> format_grid((2, 4))
        '2x4'
    """
    m, n = parse_grid(grid)
    return f"{m}x{n}"


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
