"""Run one analysis level from parsed options."""

import logging

from bids_encoding.cli.parser import LEVELS, config_from_args
from bids_encoding.errors import EXIT_UNKNOWN_LEVEL, BidsAppError

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
