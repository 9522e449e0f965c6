"""The one exception type that means "the user asked for something we cannot do"."""


class UserError(Exception):
    """Bad input or a missing resource: the CLI prints it as one line and exits with status 2.

    The message says what is wrong and what to do about it.
    """
