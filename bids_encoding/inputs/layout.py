"""Select the BOLD runs of each participant and task, with their word timings."""

import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_encoding.errors import (
    EXIT_CANNOT_CREATE,
    EXIT_VALIDATION,
    BadDataError,
    BidsAppError,
    MissingInputError,
    NothingSelectedError,
)
from bids_encoding.inputs.derivatives import derivative_roots, preprocessed_bold, run_brain_mask
from bids_encoding.inputs.timings.events import read_events

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One BOLD run and the words heard during it; frozen: :func:`select_runs` builds it, and what later stages
    find in it (:func:`with_notes`) makes a new one.

    Clocks: ``words`` are on the scan's clock (seconds from the first volume), ``audio_words`` on the
    annotation's (the words as the stimulus specification's annotation times them), and ``origin`` is where the
    annotation's time 0 falls on the scan's clock (``words.onset = audio_words.onset + origin``; 0 for word events
    read from events.tsv, already on the scan's clock). The annotations of the presets count from the start of
    the stimulus audio (Le Petit Prince's sections, LeBel's stories; Narratives' ``events:story`` origin is the
    first events row naming the story's audio file), so there ``origin`` is the time of the audio's first sample.
    ``audio_origin`` says it for every run that has ``audio``: it is ``origin`` when the audio comes from the
    specification's ``audio`` pattern, and the onset of the first events row naming it when it comes from the
    events' ``stim_file`` (word events read from events.tsv have ``origin`` 0 while their audio may start later).
    Acoustic frames (on the audio's clock) go on the scan's clock as ``onset + audio_origin``.
    """

    subject: str
    task: str
    bold_path: Path
    events_path: Path
    repetition_time: float
    n_scans: int
    words: pd.DataFrame | None = field(repr=False)  # None only inside select_runs, before the timings are read
    session: str | None = None
    run: str | None = None
    space: str | None = None
    origin: float = 0.0
    audio_words: pd.DataFrame | None = field(default=None, repr=False)
    word_source: dict | None = None
    notes: tuple = ()  # what was found and done about it (duplicates, NaN voxels, ...)
    left_out: tuple = ()  # runs of the task left out (aborted; raw runs without a preprocessed series)
    repetition_time_source: str = "sidecar"  # or "NIfTI header" (a preprocessed run without its raw run)
    brain_mask: Path | None = None  # the derivative's own brain mask of this run
    confounds: object = field(default=None, repr=False)  # RunConfounds, when --confounds is given
    audio: Path | None = None  # the stimulus audio (it may not exist: check_feature_inputs says so when needed)
    audio_origin: float | None = None  # the scan time of the audio's first sample (see above)
    audio_source: str | None = None  # where the audio was found: "events.tsv stim_file", "stimulus specification"
    transcript: Path | None = None  # the original text (the specification's pattern; it may not exist)
    transcript_alignment: object = field(default=None, repr=False)  # a TranscriptAlignment, once aligned

    @property
    def scan_duration(self):
        return self.n_scans * self.repetition_time


def load_layout(bids_dir, database_dir, validate=True):
    """Index a BIDS dataset with pybids, keeping the index out of the dataset.

    Parameters
    ----------
    bids_dir : Path
        Root of the raw dataset.
    database_dir : Path
        Where pybids writes its index (under the work directory): each run builds its own, in a folder of its
        own there (removed when the process ends), so that jobs sharing a work directory never rebuild one
        index under each other.
    validate : bool
        Drop files whose names are not valid BIDS, and require
        ``dataset_description.json``.

    Returns
    -------
    bids.BIDSLayout
    """
    from bids import BIDSLayout
    from bids.exceptions import BIDSValidationError

    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise MissingInputError(f"BIDS dataset {bids_dir} does not exist: give the dataset's root folder")
    if not (bids_dir / "dataset_description.json").is_file():
        code = EXIT_VALIDATION if validate else None
        raise BidsAppError(
            f"{bids_dir / 'dataset_description.json'} is missing: {bids_dir} is not a BIDS dataset "
            "(add the file, or point to the dataset's root folder)",
            code if code else MissingInputError.exit_code,
        )
    database_dir = _run_database_dir(database_dir)
    try:
        return BIDSLayout(bids_dir, validate=validate, database_path=database_dir, reset_database=True)
    except BIDSValidationError as error:
        raise BidsAppError(f"{bids_dir}: {error} (or use --skip-bids-validation)", EXIT_VALIDATION) from error
    except ValueError as error:
        raise BadDataError(f"{bids_dir}: pybids cannot index the dataset: {error}") from error
    except OSError as error:
        raise _json_error(error, bids_dir) from error
    except Exception as error:  # sqlalchemy's errors are many lines of SQL: one line, with what to do
        if type(error).__module__.startswith("sqlalchemy"):
            raise BidsAppError(f"{bids_dir}: the pybids index in {database_dir} failed "
                               f"({type(error).__name__}): check that the work directory is on a local, "
                               "writable disk (--work-dir)", EXIT_CANNOT_CREATE) from error
        raise


def _run_database_dir(parent):
    """A folder of this run's own under ``parent`` for the pybids index, removed when the process ends."""
    import atexit
    import shutil
    import tempfile

    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=parent))
    except OSError as error:
        raise BidsAppError(f"cannot create the pybids index folder in {parent}: {error}; choose a writable "
                           "--work-dir", EXIT_CANNOT_CREATE) from error
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _json_error(error, where):
    """pybids reports a sidecar with a JSON syntax error as an OSError naming it: say which file and what to do."""
    bad = re.search(r"filename='([^']+)'", str(error))
    if bad is None:
        return BadDataError(f"{where}: cannot read the dataset: {error}")
    return BadDataError(f"{bad.group(1)} is not valid JSON: fix its syntax (a trailing comma, a missing quote or "
                        "brace)")


def select_subjects(layout, participant_labels=None):
    """Return the subject labels to process (all when none are given); labels without ``sub-``, as the parser's
    ``--participant-label`` gives them."""
    available = sorted(layout.get_subjects())
    if not participant_labels:
        if not available:
            raise NothingSelectedError(_no_participant_message(Path(layout.root)))
        return available
    wanted = list(participant_labels)
    missing = [label for label in wanted if label not in available]
    if missing:
        raise NothingSelectedError(
            f"participant(s) {', '.join('sub-' + m for m in missing)} not found in {layout.root} "
            f"(available: {', '.join(available[:10]) or 'none'})"
        )
    return list(dict.fromkeys(wanted))


def _no_participant_message(root):
    """Why pybids found no participant, when there are sub-* folders (a derivative dataset, non-BIDS files)."""
    folders = sorted(path.name for path in root.glob("sub-*") if path.is_dir())
    if not folders:
        return f"no participant (sub-*) folder found in {root}"
    try:
        kind = json.loads((root / "dataset_description.json").read_text(encoding="utf-8-sig")).get("DatasetType")
    except (OSError, ValueError):
        kind = None
    if kind == "derivative":
        return (f"{root} is a derivative dataset (DatasetType 'derivative'; {', '.join(folders[:3])} ...): give the "
                "raw dataset as BIDS_DIR, with this folder under its derivatives/")
    return (f"{', '.join(folders[:3])} in {root} hold no file that pybids indexes as BIDS raw data: check the file "
            "names, or use --skip-bids-validation")


def _bold_files(layout, subject, task, space, filters=None):
    query = dict(subject=subject, suffix="bold", extension=[".nii", ".nii.gz"], datatype="func")
    if task:
        query["task"] = task
    files = layout.get(**query)
    if space:
        files = [f for f in files if f.entities.get("space") == space]
    return [f for f in files if matches_filters(f.entities, filters)]


def matches_filters(entities, filters):
    """Whether a file's entities pass ``--bids-filter-file``'s ``bold`` queries (a value, a list of values, or
    null for an absent entity), as fMRIPrep's filter files."""
    for key, wanted in (filters or {}).items():
        value = entities.get(key)
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if not any((v is None and value is None) or (value is not None and str(value) == str(v)) for v in allowed):
            return False
    return True


def _run_key(bold):
    entities = bold.entities
    return (entities.get("task"), entities.get("session"), entities.get("run"))


def _label_order(label):
    """Sort key of an entity label: numbers as numbers (run-2 before run-10), then text; missing first."""
    if label is None:
        return (0, 0, "")
    text = str(label)
    return (1, int(text), text) if text.isdigit() else (2, 0, text)


def _read_n_scans(bold_path):
    try:
        shape = nib.load(str(bold_path)).shape
    except Exception as error:  # nibabel raises many kinds on broken files
        raise BadDataError(f"cannot read NIfTI {bold_path}: {error}") from error
    if len(shape) != 4 or shape[3] < 2:
        raise BadDataError(f"{bold_path} is not a 4D BOLD series (shape {shape})")
    return int(shape[3])


def _repetition_time(layout, bold_path):
    try:
        metadata = layout.get_metadata(str(bold_path))
    except (OSError, ValueError) as error:
        raise _json_error(error, bold_path) from error
    tr = metadata.get("RepetitionTime")
    if tr is None:
        sidecar = str(bold_path).replace(".nii.gz", ".json").replace(".nii", ".json")
        raise BadDataError(f"no RepetitionTime for {bold_path}: add it (in seconds) to its sidecar {sidecar}")
    try:
        tr = float(tr)
    except (TypeError, ValueError):
        tr = -1.0
    if tr <= 0:
        raise BadDataError(f"RepetitionTime of {bold_path} must be a positive number of seconds")
    return tr


def _matching_key(bold):
    """The run key with numeric labels unpadded: a preprocessed file (run 4) and its raw run (run-04) match."""
    return tuple(str(int(x)) if str(x).isdigit() else x for x in _run_key(bold))


def _raw_twin(raw_files, bold):
    """The raw BOLD (first echo) of the run a preprocessed file comes from, or None."""
    key = _matching_key(bold)
    twins = [f for f in raw_files if _matching_key(f) == key]
    return min(twins, key=lambda f: int(f.entities.get("echo") or 0), default=None)


def _leave_out_raw_only(raw_files, preprocessed, runs_by_task):
    """Raw runs with no preprocessed series (aborted runs) are left out: logged and recorded with the task's runs."""
    done = {_matching_key(bold) for bold in preprocessed}
    raw_only = {}
    for bold in raw_files:
        if _matching_key(bold) not in done and str(bold.entities.get("echo") or 1) == "1":
            raw_only.setdefault(bold.entities.get("task"), []).append(Path(bold.path).name)
    for task_label, names in raw_only.items():
        LOGGER.warning("leaving out %s: raw run(s) with no preprocessed series", ", ".join(names))
        if task_label in runs_by_task:
            runs_by_task[task_label] = [replace(run, left_out=tuple(names)) for run in runs_by_task[task_label]]


def _refuse_raw_beside_other_preprocessed(roots, subject, task, space, resolution):
    """The raw BOLD is never used by mistake: when the participant has preprocessed BOLD that the selection
    (--space, --res, --bids-filter-file) leaves out, say what there is."""
    available = preprocessed_bold(roots, subject, task)
    if available:
        kinds = sorted({"_".join(f"{key}-{f.entities[key]}" for key in ("space", "res") if f.entities.get(key))
                        or Path(f.path).name for f in available})
        asked = " ".join(f"--{name} {value}" for name, value in (("space", space), ("res", resolution)) if value)
        raise NothingSelectedError(f"sub-{subject} has preprocessed BOLD in {Path(available[0].path).parent} "
                                   f"({', '.join(kinds)}) but none matches {asked or 'the --bids-filter-file'}: "
                                   "choose among those (the raw BOLD is not used in their place)")


def _header_repetition_time(bold_path):
    """The TR from the NIfTI header, for preprocessed BOLD with no raw sidecar to read it from (in the header's
    time unit; a header without one is read in seconds, as nibabel and nilearn do)."""
    seconds = _header_seconds(bold_path, unset_as_seconds=True)
    if seconds is None:
        raise BadDataError(f"no RepetitionTime for {bold_path}: no raw sidecar names it and the NIfTI header has "
                           "none; add the raw run's sidecar with RepetitionTime")
    LOGGER.warning("%s: no raw run to read RepetitionTime from; using the NIfTI header's %g s", bold_path.name,
                   seconds)
    return seconds


def _events_file(layout, bold, required=True):
    """The events file that applies to a BOLD run under the BIDS inheritance principle.

    Candidates live in the BOLD file's folder or one of its parents and have
    no entity that differs from the BOLD file's; the nearest folder wins,
    then the most specific name.
    """
    bold_path = Path(bold.path)
    entities = {key: value for key, value in bold.get_entities(metadata=False).items()
                if key not in ("suffix", "extension", "datatype")}
    candidates = []
    for events in layout.get(suffix="events", extension=".tsv"):
        path = Path(events.path)
        if path.parent not in (bold_path.parent, *bold_path.parents):
            continue
        own = {key: value for key, value in events.get_entities(metadata=False).items()
               if key not in ("suffix", "extension", "datatype")}
        if all(key in entities and str(entities[key]) == str(value) for key, value in own.items()):
            candidates.append((len(path.parts), len(own), path))
    if not candidates and not required:
        return None
    if not candidates:
        raise MissingInputError(
            f"no events file with word timings for {bold_path}: add "
            f"{bold_path.name.split('_bold.nii')[0] + '_events.tsv'} or a top-level "
            "task-<label>_events.tsv (see docs/input-format.md)"
        )
    return max(candidates)[2]


def _check_words(run):
    words = run.words
    if words.empty:
        raise BadDataError(
            f"no word events (trial_type 'word') in {run.events_path} for {run.bold_path.name}: "
            "every run needs its word timings"
        )
    late = words[words["onset"] >= run.scan_duration]
    if not late.empty:
        first = late.iloc[0]
        raise BadDataError(
            f"{run.events_path}: word '{first['word']}' at {first['onset']:.2f} s starts after the end of "
            f"{run.bold_path.name} ({run.n_scans} scans x {run.repetition_time:g} s = {run.scan_duration:g} s); "
            "check the events' time origin or the BOLD file"
        )
    if (words["onset"] < 0).any():
        raise BadDataError(f"{run.events_path}: negative word onsets; onsets count from the first volume")


def _words_from_spec(layout, runs, stimuli):
    """Read each run's words as the stimulus specification says; leave aborted runs out (logged, recorded)."""
    from bids_encoding.inputs.timings.spec import run_audio, run_timings, run_transcript

    kept, skipped = drop_aborted(runs, stimuli.min_run_fraction)
    unmatched, read = [], []
    for rank, run in enumerate(kept, start=1):
        entities = {"subject": run.subject, "task": run.task, "session": run.session, "run": run.run, "rank": rank,
                    "bold_dir": run.bold_path.parent.relative_to(layout.root).as_posix(),
                    "bold_stem": run.bold_path.name.split("_bold.nii")[0]}
        entry = stimuli.entry_for(entities)
        if entry is None:
            unmatched.append(run.bold_path.name)
            continue
        timings = run_timings(entry, layout.root, entities, run.events_path)
        left_out = tuple(run.left_out) + tuple(r.bold_path.name for r in skipped)
        run = _with_audio(run, run_audio(layout.root, run.events_path, entry, entities, timings.origin))
        run = replace(run, transcript=run_transcript(layout.root, entry, entities))
        read.append(with_notes(replace(run, words=timings.words, audio_words=timings.audio_words,
                                       origin=timings.origin, left_out=left_out, events_path=timings.annotation,
                                       word_source={**timings.record(), "Annotation": str(timings.annotation),
                                                    "Rank": rank, "LeftOut": list(left_out)}),
                               timings.timings.notes))
    if unmatched:
        raise BadDataError(f"stimulus specification {stimuli.name} says nothing about {', '.join(unmatched)}: "
                           "add a [[stimulus]] entry for them or choose other tasks with --task")
    return read


def _with_audio(run, found):
    """The run with its stimulus audio (``found``: :func:`~bids_encoding.inputs.timings.spec.run_audio`'s)."""
    if found is None:
        return run
    path, onset, source = found
    return replace(run, audio=path, audio_origin=onset, audio_source=source)


def with_notes(run, notes):
    """The run with what was found in it kept for its sidecars, each new note logged (once each: runs may be
    reread)."""
    new = [note for note in dict.fromkeys(notes) if note not in run.notes]
    for note in new:
        LOGGER.warning("%s: %s", run.bold_path.name, note)
    return replace(run, notes=tuple(run.notes) + tuple(new)) if new else run


def drop_aborted(runs, fraction):
    """``(kept, skipped)``: runs shorter than ``fraction`` of the median of their task are aborted (logged)."""
    median = float(np.median([run.n_scans for run in runs]))
    kept = [run for run in runs if run.n_scans >= fraction * median]
    skipped = [run for run in runs if run.n_scans < fraction * median]
    for run in skipped:
        LOGGER.warning("leaving out %s: %d scans, fewer than %.0f%% of the median %g of its task (an aborted "
                       "run); the runs' ranks skip it", run.bold_path.name, run.n_scans, 100 * fraction, median)
    return kept, skipped


def check_timings(runs):
    """Every word inside its scan, the audio inside the run, the run not much longer than the audio: one
    table of every mismatch in the error."""
    rows = []
    for run in runs:
        words = run.words
        problems = []
        if words.empty:
            problems.append("no words")
        else:
            first, last = float(words["onset"].min()), float(words["offset"].max())
            if first < 0:
                problems.append("words before the first volume")
            if last > run.scan_duration:
                problems.append("words after the last volume")
            elif run.scan_duration > last + max(60.0, last - max(first, 0.0)):
                problems.append("run much longer than the words")
        if problems:
            rows.append({"run": run.bold_path.name, "words": len(words),
                         "first word (s)": round(float(words["onset"].min()), 1) if len(words) else None,
                         "last word end (s)": round(float(words["offset"].max()), 1) if len(words) else None,
                         "scan (s)": round(run.scan_duration, 1), "problem": "; ".join(problems),
                         "words from": str(run.events_path)})
    if rows:
        table = pd.DataFrame(rows).to_string(index=False)
        raise BadDataError(f"word timings of {len(rows)} run(s) do not fit their scans (table below; words from "
                           f"{rows[0]['words from']}): check the time origin and the run order of the stimulus "
                           "specification", details=table)


@dataclass(frozen=True)
class BoldQuery:
    """Which BOLD files of a participant: ``space`` (the ``space-`` entity), ``resolution`` (the ``res-`` entity
    of preprocessed BOLD) and ``filters`` (entity queries, ``--bids-filter-file``); ``None``: any."""

    space: str | None = None
    resolution: str | None = None
    filters: dict | None = None


def select_runs(layout, subject, task=None, stimuli=None, pool_label=None, query=BoldQuery(), roots=None):
    """Collect and check one participant's runs, grouped by task.

    Parameters
    ----------
    layout : bids.BIDSLayout
    subject : str
        Label without ``sub-``.
    task : str or None
        Task label; ``None`` takes every task of the participant.
    stimuli : StimulusSpec or None
        Where the word timings are; ``None``: word rows of the runs' events.tsv.
    pool_label : str or None
        Pool the runs of every task under this label: the stimuli, not the
        tasks, are the units of cross-validation (one task per story).
    query : BoldQuery
        Which BOLD files (space, resolution, ``--bids-filter-file``).
    roots : list of Path or None
        Folders of preprocessed BOLD (:func:`~bids_encoding.inputs.derivatives.derivative_roots`);
        ``None``: those found under the dataset's ``derivatives/``.

    Returns
    -------
    dict
        ``{task: [Run, ...]}`` sorted by session and run.
    """
    space, resolution, filters = query.space, query.resolution, query.filters
    raw_files = _bold_files(layout, subject, task, space, filters)
    roots = derivative_roots(layout.root) if roots is None else roots
    files = [f for f in preprocessed_bold(roots, subject, task, space, resolution)
             if matches_filters(f.entities, filters)]
    if not files:
        _refuse_raw_beside_other_preprocessed(roots, subject, task, space, resolution)
        files = raw_files
    if files is not raw_files:
        LOGGER.info("sub-%s: using %d preprocessed BOLD file(s) from %s, not the raw BOLD", subject, len(files),
                    Path(files[0].path).parent)
    if not files:
        what = f"task-{task}" if task else "any task"
        raise NothingSelectedError(f"no BOLD file for sub-{subject} and {what}" +
                                   (f" in space-{space}" if space else "") + f" in {layout.root}")
    by_key = {}
    for bold in files:
        if bold.entities.get("echo") is not None:
            raise BadDataError(
                f"{bold.path} is one echo of a multi-echo run and no preprocessed BOLD was found in "
                f"{Path(layout.root) / 'derivatives'}: combine the echoes first (tedana, fMRIPrep with "
                "--me-output-echos, or the dataset's own preprocessed derivatives)"
            )
        key = _run_key(bold)
        if key in by_key:
            first = by_key[key].get_entities(metadata=False)
            second = bold.get_entities(metadata=False)
            differ = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
            advice = ("choose one with --space" if differ == ["space"] else
                      "choose with --bids-filter-file, e.g. {\"bold\": {\"" + differ[0] + "\": \"" +
                      str(first.get(differ[0])) + "\"}}" if differ else "keep one")
            raise BadDataError(f"two BOLD files for the same run: {by_key[key].path} and {bold.path} (they differ in "
                               f"{', '.join(differ) or 'nothing pybids parses'}): {advice}")
        by_key[key] = bold

    runs_by_task = {}
    for key in sorted(by_key, key=lambda k: tuple(_label_order(x) for x in k)):
        bold = by_key[key]
        bold_path = Path(bold.path)
        raw = bold if files is raw_files else _raw_twin(raw_files, bold)
        run = Run(
            subject=subject,
            task=key[0],
            session=key[1],
            run=None if key[2] is None else str(key[2]),
            space=bold.entities.get("space"),
            bold_path=bold_path,
            events_path=_events_file(layout, raw, required=stimuli is None) if raw is not None else None,
            repetition_time=(_repetition_time(layout, Path(raw.path)) if raw is not None
                             else _header_repetition_time(bold_path)),
            n_scans=_read_n_scans(bold_path),
            words=None,
            repetition_time_source="sidecar" if raw is not None else "NIfTI header",
            brain_mask=None if files is raw_files else run_brain_mask(bold_path),
        )
        runs_by_task.setdefault(run.task, []).append(run)
    if files is not raw_files:
        _leave_out_raw_only(raw_files, files, runs_by_task)
    for runs in runs_by_task.values():
        _check_repetition_times(runs)
    from bids_encoding.inputs.timings.spec import run_audio

    for task_label, runs in runs_by_task.items():
        if stimuli is None:
            read = []
            for run in runs:
                if run.events_path is None:
                    raise MissingInputError(f"no raw run of {run.bold_path} to take its word events from: add the "
                                            "raw run with its events.tsv, or give --stimuli")
                timings = read_events(run.events_path)
                run = _with_audio(run, run_audio(layout.root, run.events_path))
                read.append(with_notes(replace(run, words=timings.words), timings.notes))
                _check_words(read[-1])
            runs_by_task[task_label] = read
        else:
            runs_by_task[task_label] = _words_from_spec(layout, runs, stimuli)
    runs_by_task = {task_label: runs for task_label, runs in runs_by_task.items() if runs}
    if pool_label is not None:
        pooled = sorted((run for runs in runs_by_task.values() for run in runs),
                        key=lambda r: tuple(_label_order(x) for x in (r.session, r.task, r.run)))
        runs_by_task = {pool_label: pooled}

    for task_label, runs in runs_by_task.items():
        trs = {run.repetition_time for run in runs}
        if len(trs) > 1:
            listed = "; ".join(f"{tr:g} s: {', '.join(r.bold_path.name for r in runs if r.repetition_time == tr)}"
                               for tr in sorted(trs))
            raise BadDataError(f"sub-{subject} task-{task_label}: runs have different RepetitionTime ({listed}); "
                               "analyse them separately (--task, --bids-filter-file) or fix the sidecars")
    return runs_by_task


def _check_repetition_times(runs):
    """A run whose sidecar TR differs from the other runs' while its NIfTI header agrees with them has a wrong
    sidecar: say so, naming it (otherwise its words would look late or early)."""
    by_run = {run.bold_path: run.repetition_time for run in runs}
    for run in runs:
        header = _header_seconds(run.bold_path)
        others = {tr for path, tr in by_run.items() if path != run.bold_path}
        if header and len(others) == 1 and abs(run.repetition_time - header) > 0.01 * header \
                and abs(header - next(iter(others))) <= 0.01 * header:
            raise BadDataError(f"{run.bold_path.name}: RepetitionTime {run.repetition_time:g} s in its sidecar, but "
                               f"its NIfTI header and the other runs say {header:g} s: fix the sidecar")


def _header_seconds(bold_path, unset_as_seconds=False):
    """The NIfTI header's TR in seconds, or None when the header does not give one (nor a time unit, unless
    ``unset_as_seconds``)."""
    header = nib.load(str(bold_path)).header
    zooms = header.get_zooms()
    if len(zooms) < 4 or zooms[3] <= 0:
        return None
    units = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0 if unset_as_seconds else 0.0}
    return units.get(header.get_xyzt_units()[1], 0.0) * float(zooms[3]) or None
