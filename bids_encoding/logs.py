"""Logging to the console and to a file in the output's ``logs/`` folder."""

import logging
import os
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class WarningCollector(logging.Handler):
    """Keeps the warnings of the current run, for the reports."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


COLLECTOR = WarningCollector()


def current_log_file():
    """The log file of the run in progress, or ``None`` before one is set up."""
    for handler in logging.getLogger("bids_encoding").handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def setup_logging(output_dir=None, verbosity=0):
    """Log INFO (DEBUG with ``-v``) to stderr and everything to a log file.

    Parameters
    ----------
    output_dir : Path or None
        The log file goes to ``<output_dir>/logs/``.
    verbosity : int
        Number of ``-v`` flags.

    Returns
    -------
    Path or None
        The log file.
    """
    root = logging.getLogger("bids_encoding")
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler is not COLLECTOR:
            handler.close()
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbosity else logging.INFO)
    console.setFormatter(logging.Formatter("bids_encoding: %(message)s"))
    root.addHandler(console)
    COLLECTOR.messages = []
    root.addHandler(COLLECTOR)
    root.propagate = False
    if output_dir is None:
        return None
    log_dir = Path(output_dir) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"bids_encoding_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}.log"
    file_handler = logging.FileHandler(log_file)
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    return log_file
