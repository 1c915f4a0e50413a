"""Run one analysis level from parsed options."""

import logging
import os
import shlex
import sys

from bids_encoding.cli.parser import LEVELS, config_from_args, effective_options
from bids_encoding.errors import EXIT_CANNOT_CREATE, EXIT_UNKNOWN_LEVEL, BidsAppError

LOGGER = logging.getLogger("bids_encoding.cli")


def run(args):
    """Run one analysis level; return the exit code."""
    from bids_encoding.config import save_config
    from bids_encoding.logs import setup_logging

    if args.analysis_level not in LEVELS:
        raise BidsAppError(f"unknown analysis level '{args.analysis_level}': use 'participant', then 'group' "
                           "(or 'words', or 'datasets' across datasets)",
                           EXIT_UNKNOWN_LEVEL)
    config = config_from_args(args)
    level = args.analysis_level
    _check_dependencies(level, config, args)
    _check_writable(config.output_dir)
    log_file = setup_logging(config.output_dir, args.verbose)
    command_line = getattr(args, "command_line", sys.argv[1:])
    save_config(config, log_file.with_name(log_file.stem + "_config.toml"), effective_options(args),
                args.analysis_level, shlex.join(["bids_encoding", *map(str, command_line)]))
    for dest, (in_file, given) in getattr(args, "overridden", {}).items():
        LOGGER.info("--%s %s on the command line overrides the config file's %s", dest.replace("_", "-"),
                    _shown(given), _shown(in_file))
    from bids_encoding.config import limit_threads

    LOGGER.debug("numerical libraries limited to %d thread(s)", limit_threads(config))
    from bids_encoding.derivatives.staging import remove_stale_staging

    stale = remove_stale_staging(config.output_dir)
    if stale:
        LOGGER.warning("removed %d staging folder(s) left in %s by killed runs of this machine", stale,
                       config.output_dir)
    if args.reports_only:
        return _reports_only(level, config, log_file)
    if level in ("participant", "words"):
        _validate_input(config, log_file)
    failure = None
    try:
        summary = _run_level(level, config, args)
    except BidsAppError as error:
        failure = {"message": str(error), "log": str(log_file)}
        raise
    except KeyboardInterrupt:
        failure = {"message": "interrupted", "log": str(log_file)}
        raise
    except Exception as error:
        failure = {"message": f"unexpected {type(error).__name__}: {error}", "log": str(log_file)}
        raise
    finally:
        if level in ("participant", "group", "datasets") and not (args.boilerplate_only or args.skip_reports
                                                                  or args.plan or args.features_only):
            _reports(level, config, failure, log_file)
    LOGGER.info(summary)
    return 0


def _check_dependencies(level, config, args):
    """The packages this run needs, before anything is read, loaded or fitted (one line, exit 66)."""
    from bids_encoding.dependencies import check_run

    figures = level in ("participant", "group") and not (args.plan or args.features_only or args.boilerplate_only)
    if level == "participant" and not args.reports_only:
        check_run(config.models, config.placement.device_map, config.placement.quantize, figures)
    else:
        check_run(figures=figures)


def _validate_input(config, log_file):
    """The BIDS validator on the input, before anything else (docs/usage.md)."""
    if not config.validate:
        LOGGER.info("the input was not validated (--skip-bids-validation)")
        return
    from bids_encoding.inputs.validation import validate_input

    validate_input(config.bids_dir, log_file.with_name(log_file.stem + "_bids-validator.json"),
                   config.participant_labels or None)


def _run_level(level, config, args):
    if level == "datasets":
        from bids_encoding.across.run import run_datasets_level

        return run_datasets_level(config)
    if level == "group":
        from bids_encoding.group.run import run_group_level

        return run_group_level(config)
    if level == "words":
        from bids_encoding.words import run_words_level

        return run_words_level(config)
    from bids_encoding.participant import boilerplate_only, collect_runs, extract_features, run_participant_level

    if args.plan:
        from bids_encoding.plan import plan_participant_level

        print(plan_participant_level(config, collect_runs(config)))
        return "plan printed (nothing computed)"
    if args.features_only:
        return extract_features(config)
    return boilerplate_only(config) if args.boilerplate_only else run_participant_level(config)


def _reports(level, config, failure, log_file):
    from bids_encoding.logs import COLLECTOR
    from bids_encoding.reports import write_reports

    for path in write_reports(level, config, list(COLLECTOR.messages), failure, _relative_log(log_file, config)):
        LOGGER.info("report: %s", path)


def _relative_log(log_file, config):
    return str(log_file.relative_to(config.output_dir)) if log_file.is_relative_to(config.output_dir) else str(log_file)


def _reports_only(level, config, log_file):
    """Rebuild the reports from the outputs already in the output folder."""
    from bids_encoding.errors import MissingInputError
    from bids_encoding.logs import COLLECTOR
    from bids_encoding.reports import write_reports

    written = write_reports(level, config, list(COLLECTOR.messages), None, _relative_log(log_file, config),
                            rebuild=True)
    if not written:
        raise MissingInputError(f"no {level} results in {config.output_dir} to report on: run the {level} level "
                                "first")
    for path in written:
        LOGGER.info("report: %s", path)
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


def _shown(value):
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
