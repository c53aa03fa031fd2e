"""The one error type users see for bad input: a message, never a traceback."""

from sandbox_policy.errors import PolicyInputError


class ConfigError(PolicyInputError):
    """Invalid stack config or command-line input.

    The message names the config key path, the bad value and what is allowed; the
    command line prints it and exits 2, the Pulumi program raises it as a RunError.
    A subclass of the rules' PolicyInputError, so one `except` serves both.
    """
