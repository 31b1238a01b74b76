"""The one exception type for bad input."""


class ConfigError(ValueError):
    """Bad user input: a config field, a matrix, a file, a name.

    Parameters
    ----------
    field : str
        Where the problem is, as the user would name it (``baths[0].temperature``).
    reason : str
        What is wrong, in one short sentence.
    """

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
