"""Errors that front ends report as one line (the CLI) or a dialog (the app), never a traceback."""


class UserError(Exception):
    """Bad input from the user: a missing file, a wrong layout, an unreadable checkpoint.

    The message says what is wrong and, where it can, what to do.
    """
