"""Which reports a run writes, and when: after every level, whether it succeeded or failed (the command calls
:func:`write_reports` from a ``finally`` block), and with ``--reports-only``."""

import logging
from pathlib import Path

from bids_encoding.derivatives.names import best_layer_sidecars, find, participant_dir

LOGGER = logging.getLogger(__name__)


def _participants_in_scope(config):
    """The participants a participant-level run was asked for that the dataset has: its labels, else every
    ``sub-*`` folder (a label of no participant gets no report: the run's error names it)."""
    if config.participant_labels:
        labels = list(config.participant_labels)
        return [label for label in labels if (Path(config.bids_dir) / f"sub-{label}").is_dir()]
    return sorted(path.name[4:] for path in Path(config.bids_dir).glob("sub-*") if path.is_dir())


def _warnings_for(config, report, warnings, rebuild):
    """The warnings a report shows: this run's, saved beside the logs for a later ``--reports-only``; when
    rebuilding, those saved by the run that made the results first, then this run's own."""
    import json

    path = Path(config.output_dir) / "logs" / f"{report}_report-warnings.json"
    if not rebuild:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(list(warnings), indent=2))
        return list(warnings)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = []
    return list(dict.fromkeys([*saved, *warnings]))


def write_reports(level, config, warnings=(), failure=None, log=None, rebuild=False):
    """Write the reports of ``level`` (``participant``, ``group`` or ``datasets``) into ``config.output_dir``
    and, after a participant level, the methods boilerplate in ``logs/``. ``failure``: ``{"message", "log"}`` of a
    run that stopped; ``rebuild``: ``--reports-only`` (the warnings of the run that made the results are shown too).
    Returns the reports written; a report that cannot be written is logged, never raised."""
    from bids_encoding.reports.group import write_group_report
    from bids_encoding.reports.participant import participant_results, write_participant_report

    written = []
    try:
        if level == "datasets":
            from bids_encoding.reports.datasets import write_datasets_report

            if (Path(config.output_dir) / "datasets").is_dir() or failure is not None:
                written.append(write_datasets_report(config.output_dir, _warnings_for(config, "datasets", warnings,
                                                                                       rebuild), failure, log))
        elif level == "group":
            if find(Path(config.output_dir) / "group", sub=None, suffix="scores", extension=".tsv") \
                    or failure is not None:
                written.append(write_group_report(config.output_dir, _warnings_for(config, "group", warnings, rebuild),
                                                  failure, log))
        elif level == "participant":
            for subject in _participants_in_scope(config):
                if participant_results(config.output_dir, subject) or failure is not None:
                    shown = _warnings_for(config, f"sub-{subject}", warnings, rebuild)
                    written.append(write_participant_report(config.output_dir, subject, shown, failure, log))
            if failure is None:
                _boilerplate_from_outputs(config)
    except Exception as error:  # a report must never hide the run's own result or error
        LOGGER.warning("could not write the %s report(s): %s: %s", level, type(error).__name__, error)
        LOGGER.debug("report error", exc_info=True)
    return written


def _boilerplate_from_outputs(config):
    import json

    from bids_encoding.reports.boilerplate import write_boilerplate
    from bids_encoding.reports.participant import participant_results

    subjects = [s for s in _participants_in_scope(config) if participant_results(config.output_dir, s)]
    if not subjects:
        return None
    folder = participant_dir(config.output_dir, subjects[0])
    sidecars = [json.loads(path.read_text()) for path in best_layer_sidecars(folder)]
    return write_boilerplate(Path(config.output_dir) / "logs", sidecars, n_participants=len(subjects),
                             ceiling=bool(find(folder, stat="ccmax", suffix="statmap", extension=".nii.gz")))
