"""Run one analysis level from parsed options."""

import logging
import os

from bids_encoding.cli.parser import LEVELS, config_from_args
from bids_encoding.errors import EXIT_CANNOT_CREATE, EXIT_UNKNOWN_LEVEL, BidsAppError

LOGGER = logging.getLogger("bids_encoding.cli")


def run(args):
    """Run one analysis level; return the exit code."""
    from bids_encoding.config import save_config
    from bids_encoding.logs import setup_logging

    if args.analysis_level not in LEVELS:
        raise BidsAppError(f"unknown analysis level '{args.analysis_level}': use 'participant', then 'group' "
                           "(or 'words')",
                           EXIT_UNKNOWN_LEVEL)
    config = config_from_args(args)
    _check_writable(config.output_dir)
    log_file = setup_logging(config.output_dir, args.verbose)
    save_config(config, log_file.with_name(log_file.stem + "_config.toml"))
    if args.analysis_level == "group":
        from bids_encoding.group.run import run_group_level

        summary = run_group_level(config)
    elif args.analysis_level == "words":
        from bids_encoding.words import run_words_level

        summary = run_words_level(config)
    else:
        from bids_encoding.participant import run_participant_level

        summary = run_participant_level(config)
    LOGGER.info(summary)
    return 0


def _check_writable(output_dir):
    """The output folder exists (created if needed) and takes a file, before anything else is done."""
    probe = output_dir / f".bids_encoding_write_test_{os.getpid()}"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise BidsAppError(f"cannot write to the output folder {output_dir} ({error.strerror}): choose a folder "
                           "you can write to", EXIT_CANNOT_CREATE) from error
