"""The error a user can fix: printed by the command line as one line, without a traceback;
and the one message for a damaged weights file."""
from __future__ import annotations


class UserError(ValueError):
    """A problem with what the user gave or has: an input file, an option, a config key, the
    disk. ``wobert`` prints it as one line and exits with status 2; other exceptions are
    programming errors and keep their traceback. (A ValueError, so callers that catch
    ValueError for bad input keep working.)"""


def damaged(name: str, reason: str) -> str:
    """The message for a weights file that cannot be read (cut short or corrupted)."""
    return f"{name} is damaged (truncated or corrupted: {reason}); export or copy it again"
