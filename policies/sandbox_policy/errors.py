"""The error for input the rules cannot judge: a message, never a traceback."""


class PolicyInputError(Exception):
    """An object or a setting the rules cannot read. The message says which and what is
    allowed; the command line prints it and exits 2 (the program's ConfigError is one)."""
