"""The one exception type the command line turns into a one-line message and exit code 2."""


class HemError(ValueError):
    """Bad input from the user: an unknown name, a malformed recipe, missing data, ...

    The message is one line that names the problem and, where there are any, the valid choices.
    """


def unknown_name(kind: str, name: object, valid) -> HemError:
    """An error for a name that is not one of ``valid``, listing the valid ones."""
    choices = ", ".join(sorted(str(v) for v in valid))
    return HemError(f"unknown {kind} {name!r}; valid choices: {choices}")
