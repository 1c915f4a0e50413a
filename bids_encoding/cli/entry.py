"""The ``bids_encoding`` command: a level, or the demo; one-line errors with BIDS-Apps exit codes."""

import logging
import sys
import traceback

from bids_encoding.cli.parser import parse_args
from bids_encoding.cli.run import run
from bids_encoding.errors import EXIT_FAILURE, BidsAppError

LOGGER = logging.getLogger("bids_encoding.cli")


def main(argv=None):
    """Entry point of the ``bids_encoding`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "demo":
            from bids_encoding.cli.demo import run_demo

            return run_demo(argv[1:])
        return run(parse_args(argv))
    except BidsAppError as error:
        LOGGER.debug("stopped: %s", error)
        print(f"bids_encoding: error: {error}", file=sys.stderr)
        if error.details:
            print(error.details, file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("bids_encoding: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # last resort: one line on screen, the traceback in the log
        from bids_encoding.logs import current_log_file

        LOGGER.debug("unexpected error:\n%s", traceback.format_exc())
        log = current_log_file()
        where = f"details in {log}" if log else "run again with -v for details"
        print(f"bids_encoding: error: unexpected {type(error).__name__}: {error} ({where}; please report it)",
              file=sys.stderr)
        return EXIT_FAILURE
