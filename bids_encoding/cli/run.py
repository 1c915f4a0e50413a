"""Run one analysis level from parsed options."""

import logging

from bids_encoding.cli.parser import LEVELS, config_from_args
from bids_encoding.errors import EXIT_UNKNOWN_LEVEL, BidsAppError

LOGGER = logging.getLogger("bids_encoding.cli")


def run(args):
    """Run one analysis level; return the exit code."""
    from bids_encoding.logs import setup_logging

    if args.analysis_level not in LEVELS:
        raise BidsAppError(f"unknown analysis level '{args.analysis_level}': use 'participant', then 'group'",
                           EXIT_UNKNOWN_LEVEL)
    config = config_from_args(args)
    setup_logging(config.output_dir, args.verbose)
    if args.analysis_level == "group":
        from bids_encoding.group.workflow import run_group_level

        summary = run_group_level(config, atlas=args.atlas, n_bootstraps=args.group_bootstraps,
                                  roi_file=args.roi_file, reliable_fraction=args.reliable_fraction)
    else:
        from bids_encoding.participant import run_participant_level

        summary = run_participant_level(config)
    LOGGER.info(summary)
    return 0
