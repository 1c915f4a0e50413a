"""Errors that end a run with a one-line message and a BIDS-Apps exit code."""

# BIDS-Apps 2.0 exit codes (bids-standard/execution-spec).
EXIT_FAILURE = 1
EXIT_VALIDATION = 16
EXIT_UNKNOWN_LEVEL = 17
EXIT_NOTHING_SELECTED = 18
EXIT_USAGE = 64
EXIT_BAD_DATA = 65
EXIT_MISSING_INPUT = 66
EXIT_CANNOT_CREATE = 73


class BidsAppError(Exception):
    """An error the user can fix; carries its exit code.

    Parameters
    ----------
    message : str
        One line that names the file and says what to do.
    exit_code : int
        A BIDS-Apps exit code.
    details : str or None
        A table printed under the message line (every mismatch at once).
    """

    exit_code = EXIT_FAILURE

    def __init__(self, message, exit_code=None, details=None):
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code
        self.details = details


class UsageError(BidsAppError):
    exit_code = EXIT_USAGE


class MissingInputError(BidsAppError):
    exit_code = EXIT_MISSING_INPUT


class BadDataError(BidsAppError):
    exit_code = EXIT_BAD_DATA


class NothingSelectedError(BidsAppError):
    exit_code = EXIT_NOTHING_SELECTED
