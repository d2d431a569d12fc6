"""Loading a reference state_dict by a weight plan: all problems found first, then all assigned."""


def load_by_plan(arrays, plan, what, unexpected_ok=None, problems=()):
    """Assigns ``arrays`` to the model's variables by ``plan``; changes nothing if anything is off.

    ``plan`` lists ``(reference name, variable, convert)``: ``convert`` maps the reference array
    (float32) to the variable's value. Every name of ``arrays`` the plan does not know (unless
    ``unexpected_ok(name, array)``), every planned name ``arrays`` lacks and every shape that
    does not fit is collected, with ``problems`` found by the caller, into one ValueError that
    starts with ``what`` (the model and how to build the right one); only when there is none
    are the variables assigned.
    """
    expected = {name for name, _, _ in plan}
    unexpected = sorted(
        name
        for name in arrays
        if name not in expected and not (unexpected_ok and unexpected_ok(name, arrays[name]))
    )
    missing = sorted(name for name in expected if name not in arrays)
    converted, wrong_shape = [], []
    for name, variable, convert in plan:
        if name not in arrays:
            continue
        try:
            value = convert(arrays[name].astype("float32"))
        except (ValueError, IndexError) as error:
            wrong_shape.append(f"{name}: {arrays[name].shape} ({error})")
            continue
        if tuple(value.shape) != tuple(variable.shape):
            wrong_shape.append(
                f"{name}: reference {arrays[name].shape} -> {value.shape}, "
                f"model needs {tuple(variable.shape)}"
            )
            continue
        converted.append((variable, value))
    problems = list(problems)
    if unexpected:
        problems.append(
            "names in the state_dict that do not match the model: " + ", ".join(unexpected)
        )
    if missing:
        problems.append("model weights missing from the state_dict: " + ", ".join(missing))
    if wrong_shape:
        problems.append("shape mismatches: " + "; ".join(sorted(set(wrong_shape))))
    if problems:
        raise ValueError(f"{what} " + " | ".join(problems))
    for variable, value in converted:
        variable.assign(value)
