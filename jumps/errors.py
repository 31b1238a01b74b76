"""The exceptions a run reports in one line: bad input, and a failure of its environment."""


class ConfigError(ValueError):
    """Bad user input: a config field, a matrix, a file, a name (exit status 2).

    Parameters
    ----------
    field : str
        Where the problem is, as the user would name it (``baths[0].temperature``).
    reason : str
        What is wrong, in one short sentence.

    Examples
    --------
    >>> import jumps
    >>> try:
    ...     jumps.ohmic(-1.0, 5.0, temperature=1.0)
    ... except jumps.ConfigError as error:
    ...     print(error)
    ...     print(error.field, "|", error.reason)
    eta: must be a finite non-negative number, got -1.0
    eta | must be a finite non-negative number, got -1.0
    >>> issubclass(jumps.ConfigError, ValueError)
    True
    """

    exit_status = 2

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class RunFailure(ConfigError):
    """Not bad input: the environment failed the run (a write that failed, a full disk, a lock
    taken over). Reported like a :class:`ConfigError`, in one line, but with exit status 1."""

    exit_status = 1
