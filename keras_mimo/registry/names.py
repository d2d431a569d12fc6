"""Looking names up: one error for every unknown name, listing the closest known ones."""

import difflib


class UnknownNameError(ValueError):
    """A name (architecture, recipe, preset, dataset) that keras-mimo does not know.

    The message lists the closest known names ("did you mean ...") and how to list them all.
    ``kind``, ``name`` and ``suggestions`` are kept as attributes.

    Example:

    >>> try:
    ...     lookup({"wrn-28-10": 1}, "wrn-28-1", "architecture")
    ... except UnknownNameError as error:
    ...     print(error, error.suggestions)
    Unknown architecture 'wrn-28-1'. Did you mean 'wrn-28-10'? ['wrn-28-10']
    """

    def __init__(self, kind, name, known, listing=None):
        self.kind, self.name = kind, name
        self.suggestions = closest_matches(name, known)
        if self.suggestions:
            hint = "Did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        else:
            hint = (
                "Known: " + ", ".join(sorted(known)[:12]) + ("..." if len(known) > 12 else "") + "."
            )
        where = f" {listing} lists them all." if listing else ""
        super().__init__(f"Unknown {kind} {name!r}. {hint}{where}")


def normalize(name):
    """The form names are compared in: lower case, stripped, ``_`` and ``-`` alike."""
    return str(name).strip().lower().replace("_", "-")


def closest_matches(name, known, count=3):
    """Up to ``count`` names of ``known`` closest to ``name`` (difflib's ratio, best first).

    A known name that starts with, or contains, the name asked for counts as close too, so
    ``closest_matches("fashion", ...)`` finds ``fashion-mnist``.
    """
    target = normalize(name)
    keyed = {normalize(k): k for k in known}
    found = difflib.get_close_matches(target, list(keyed), n=count, cutoff=0.6)
    if len(found) < count and len(target) >= 3:
        found += [k for k in sorted(keyed) if target in k and k not in found][: count - len(found)]
    return [keyed[k] for k in found]


def lookup(table, name, kind, aliases=None, listing=None):
    """``table[name]`` for a known name (spelled with ``_`` or ``-``, any case, or an alias).

    Raises :class:`UnknownNameError` naming the closest known names otherwise. ``listing`` names
    the call or command that lists every name (for the message).

    Example:

    >>> lookup({"fashion-mnist": 10}, "Fashion_MNIST", "dataset")
    10
    """
    if isinstance(name, str):
        if name in table:
            return table[name]
        target = normalize(name)
        for key in table:
            if normalize(key) == target:
                return table[key]
        for alias, key in (aliases or {}).items():
            if normalize(alias) == target:
                return table[key]
    raise UnknownNameError(kind, name, list(table), listing)
