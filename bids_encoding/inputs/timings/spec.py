"""Stimulus specifications: which annotation file holds each run's words, and when its audio starts.

A specification is a TOML file (or a built-in preset, :mod:`presets`)::

    label = "lebel"          # task label of the outputs when stories are pooled (cv_unit = "stimulus")
    cv_unit = "stimulus"     # default unit of cross-validation: "run" (per task) or "stimulus" (tasks pooled)

    [[stimulus]]             # the first entry whose patterns match a run applies to it
    task = "*"               # fnmatch patterns on the run's entities (task, session, run) ...
    annotation = "derivative/TextGrids/{task}.TextGrid"   # relative to the BIDS root
    format = "textgrid"      # a reader of bids_encoding.inputs.timings.READERS
    origin = 10.0            # the audio starts 10 s after the first volume
    options = { tier = "word" }
    audio = "stimuli/{task}.wav"   # optional: the run's stimulus audio, relative to the BIDS root
    transcript = "stimuli/{task}.txt"   # optional: the story's original text, which the model reads

``annotation``, ``audio``, ``transcript`` and string ``options`` take the placeholders ``{subject}``,
``{task}``, ``{session}``, ``{run}`` and ``{rank}`` (the run's rank, from 1,
among the participant's runs of the task ordered by their integer run label,
aborted runs left out). ``origin`` is a number of seconds (0: the annotation
counts from the first volume), or ``"events:<trial_type>"``: the onset of the
first events.tsv row that names the same ``stim_file`` as the first
``<trial_type>`` row (Narratives: the audio file starts with the music block,
before the story block), or ``"events-row:<trial_type>"``: the onset of the
first ``<trial_type>`` row itself (an annotation that counts from that block).

A run's stimulus audio (:func:`run_audio`, for the acoustic feature spaces) is the ``stim_file`` its events.tsv
names (BIDS: relative to the dataset's ``stimuli/`` folder), else the entry's ``audio`` pattern, else none. The
annotation's times count from the start of that audio, so its first sample is at ``origin`` on the scan's clock;
a ``stim_file`` starts at the onset of the first events row naming it.
"""

import fnmatch
import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bids_encoding.errors import BadDataError, MissingInputError, UsageError
from bids_encoding.inputs.timings import READERS
from bids_encoding.inputs.timings.base import WordTimings

LOGGER = logging.getLogger(__name__)
CV_UNITS = ("run", "stimulus")
ENTITY_KEYS = ("task", "session", "run", "rank")


@dataclass(frozen=True)
class StimulusEntry:
    """One ``[[stimulus]]`` entry."""

    annotation: str
    format: str
    origin: float | str = 0.0
    options: dict = field(default_factory=dict)
    match: dict = field(default_factory=dict)
    language: str | None = None  # the stimuli's language (ISO 639: en, fr, zh), for language-specific features
    audio: str | None = None  # the stimulus audio, relative to the BIDS root, with the annotation's placeholders
    transcript: str | None = None  # the original text (bids_encoding.inputs.transcripts), as ``audio``

    def matches(self, entities):
        return all(fnmatch.fnmatchcase(str(entities.get(key) or ""), str(pattern))
                   for key, pattern in self.match.items())


@dataclass(frozen=True)
class StimulusSpec:
    """Where every run's word timings are, and when its audio starts (see the module docstring)."""

    name: str
    entries: tuple
    label: str | None = None
    cv_unit: str = "run"
    min_run_fraction: float = 0.5

    @classmethod
    def from_dict(cls, data, name):
        unknown = set(data) - {"label", "cv_unit", "stimulus", "min_run_fraction", "description"}
        if unknown:
            raise UsageError(f"stimulus specification {name}: unknown key(s) {', '.join(sorted(unknown))}")
        entries = []
        for number, entry in enumerate(data.get("stimulus", []), start=1):
            entry = dict(entry)
            missing = [key for key in ("annotation", "format") if key not in entry]
            if missing:
                raise UsageError(f"stimulus specification {name}: [[stimulus]] {number} has no "
                                 f"{', '.join(missing)}")
            if entry["format"] not in READERS:
                raise UsageError(f"stimulus specification {name}: format '{entry['format']}' is not one of "
                                 f"{', '.join(READERS)}")
            match = {key: entry.pop(key) for key in ENTITY_KEYS if key in entry}
            extra = set(entry) - {"annotation", "format", "origin", "options", "language", "audio", "transcript"}
            if extra:
                raise UsageError(f"stimulus specification {name}: [[stimulus]] {number} has unknown key(s) "
                                 f"{', '.join(sorted(extra))}")
            origin = entry.get("origin", 0.0)
            if not isinstance(origin, (int, float)) and not str(origin).startswith(("events:", "events-row:")):
                raise UsageError(f"stimulus specification {name}: origin must be seconds, 'events:<trial_type>' "
                                 "or 'events-row:<trial_type>'")
            entries.append(StimulusEntry(entry["annotation"], entry["format"],
                                         float(origin) if isinstance(origin, (int, float)) else origin,
                                         dict(entry.get("options", {})), match, entry.get("language"),
                                         entry.get("audio"), entry.get("transcript")))
        if not entries:
            raise UsageError(f"stimulus specification {name} has no [[stimulus]] entry")
        cv_unit = data.get("cv_unit", "run")
        if cv_unit not in CV_UNITS:
            raise UsageError(f"stimulus specification {name}: cv_unit must be one of {', '.join(CV_UNITS)}")
        return cls(name, tuple(entries), data.get("label"), cv_unit, float(data.get("min_run_fraction", 0.5)))

    @classmethod
    def load(cls, text):
        """A preset name or a TOML file."""
        from bids_encoding.inputs.timings.presets import PRESETS

        if text in PRESETS:
            return cls.from_dict(tomllib.loads(PRESETS[text]), text)
        path = Path(text)
        if path.is_dir():
            return cls.from_words_folder(path)
        if not path.is_file():
            raise MissingInputError(f"--stimuli {text}: neither a preset ({', '.join(PRESETS)}) nor a TOML file")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"stimulus specification {path} is not valid TOML: {error}") from error
        return cls.from_dict(data, str(path))

    @classmethod
    def from_words_folder(cls, folder):
        """The events files a ``words`` level wrote: each mirrors its BOLD file's path and name; their times
        count from the first volume already."""
        summary = Path(folder) / "words.json"
        if not summary.is_file():
            raise MissingInputError(f"--stimuli {folder}: a folder must be one the 'words' level wrote (it has no "
                                    "words.json)")
        recorded = json.loads(summary.read_text())
        entry = StimulusEntry(str(Path(folder).resolve() / "{bold_dir}" / "{bold_stem}_events.tsv"), "events")
        return cls(str(folder), (entry,), recorded.get("Label"), recorded.get("CVUnit", "run"))

    def entry_for(self, entities):
        return next((entry for entry in self.entries if entry.matches(entities)), None)

    def record(self):
        return {"Specification": self.name, "CVUnit": self.cv_unit}


@dataclass
class RunTimings:
    """A run's words on the scan's clock, and where they came from."""

    words: pd.DataFrame
    audio_words: pd.DataFrame
    origin: float
    annotation: Path
    timings: WordTimings
    language: str | None = None

    def record(self):
        return {**self.timings.record(), "Origin": self.origin,
                **({"Language": self.language} if self.language else {})}


def run_timings(entry, bids_dir, entities, events_path=None):
    """Read a run's annotation and put its words on the scan's clock.

    Parameters
    ----------
    entry : StimulusEntry
    bids_dir : Path
    entities : dict
        ``subject``, ``task``, ``session``, ``run``, ``rank`` of the run.
    events_path : Path or None
        The run's events.tsv (for ``origin = "events:..."``).
    """
    values = {key: "" if value is None else value for key, value in entities.items()}
    path = Path(bids_dir) / _fill(entry.annotation, values)
    if not path.is_file():
        raise MissingInputError(f"no word timings {path} for sub-{entities['subject']} task-{entities['task']}"
                                f"{'' if entities.get('run') is None else ' run-' + str(entities['run'])}: "
                                "fetch the annotation files (datalad get) or fix the stimulus specification")
    options = {key: _fill(value, values) if isinstance(value, str) else value for key, value in entry.options.items()}
    options = {key: int(value) if isinstance(value, str) and value.isdigit() else value
               for key, value in options.items()}
    timings = READERS[entry.format](path, **options)
    origin = entry.origin if isinstance(entry.origin, float) else events_origin(events_path, entry.origin)
    words = timings.words.copy()
    words["onset"] += origin
    words["offset"] += origin
    return RunTimings(words, timings.words, origin, path, timings, entry.language)


def events_origin(events_path, origin):
    """Onset of the first events row naming the same ``stim_file`` as the first ``<trial_type>`` row
    (``events:``), or of that row itself (``events-row:``)."""
    kind, trial_type = origin.split(":", 1)
    if events_path is None:
        raise MissingInputError(f"origin '{origin}' needs the run's events.tsv, and there is none")
    events = pd.read_csv(events_path, sep="\t", dtype=str, keep_default_na=False)
    needed = {"onset", "trial_type"} | ({"stim_file"} if kind == "events" else set())
    if not needed <= set(events.columns):
        raise BadDataError(f"{events_path}: origin '{origin}' needs the columns {', '.join(sorted(needed))}")
    chosen = events[events["trial_type"] == trial_type]
    if chosen.empty:
        raise BadDataError(f"{events_path} has no '{trial_type}' row (trial types: "
                           f"{', '.join(sorted(set(events['trial_type'])))})")
    if kind == "events-row":
        return float(chosen["onset"].iloc[0])
    stim_file = chosen["stim_file"].iloc[0]
    first = events[events["stim_file"] == stim_file].iloc[0]
    return float(first["onset"])


def run_audio(bids_dir, events_path=None, entry=None, entities=None, origin=0.0):
    """Where a run's stimulus audio is, and when its first sample plays on the scan's clock.

    Parameters
    ----------
    bids_dir : Path
    events_path : Path or None
        The run's events.tsv: its ``stim_file`` column comes first.
    entry : StimulusEntry or None
        Its ``audio`` pattern comes next (filled as the annotation's).
    entities : dict or None
        The run's entities (``subject``, ``task``, ``session``, ``run``, ``rank``) for the pattern.
    origin : float
        Where the entry's annotation puts its time 0 on the scan's clock: the audio's start with the pattern.

    Returns
    -------
    (Path, float, str) or None
        The audio file (it may not exist: the check before any work names it), the scan time of its first
        sample, and where it was found (``events.tsv stim_file`` or ``stimulus specification``).
    """
    trial_type = None
    if entry is not None and isinstance(entry.origin, str) and entry.origin.startswith("events:"):
        trial_type = entry.origin.partition(":")[2]  # the audio whose start is the origin
    found = events_audio(events_path, trial_type) if events_path is not None else None
    if found is not None:
        name, onset = found
        return Path(bids_dir) / "stimuli" / name, onset, "events.tsv stim_file"
    if entry is not None and entry.audio:
        values = {key: "" if value is None else value for key, value in (entities or {}).items()}
        return Path(bids_dir) / _fill(entry.audio, values), float(origin), "stimulus specification"
    return None


def run_transcript(bids_dir, entry, entities):
    """The entry's transcript file for a run (its ``transcript`` pattern filled as the annotation's), or ``None``."""
    if entry is None or not entry.transcript:
        return None
    values = {key: "" if value is None else value for key, value in entities.items()}
    return Path(bids_dir) / _fill(entry.transcript, values)


def events_audio(events_path, trial_type=None):
    """``(stim_file, onset)``: the audio an events.tsv names and the onset of the first row naming it, or ``None``
    (no ``stim_file`` column, or only ``n/a``). Several files (Narratives' ``schema`` runs: two stories) give the
    one of the first ``trial_type`` row when given, else none of them (logged). Rows other than word rows are
    preferred for the onset: a word's onset is not when its audio file starts."""
    try:
        events = pd.read_csv(events_path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError):
        return None  # reading the words reports an unreadable file
    if "stim_file" not in events.columns or "onset" not in events.columns:
        return None
    named = events[~events["stim_file"].str.strip().isin(["", "n/a"])]
    if "trial_type" in named.columns and (named["trial_type"] != "word").any():
        named = named[named["trial_type"] != "word"]
    files = list(dict.fromkeys(named["stim_file"]))
    if trial_type is not None and "trial_type" in named.columns and (named["trial_type"] == trial_type).any():
        files = [named.loc[named["trial_type"] == trial_type, "stim_file"].iloc[0]]
    if not files:
        return None
    if len(files) > 1:
        LOGGER.warning("%s names several audio files (%s): no single audio for the run",
                                            events_path, ", ".join(files))
        return None
    onset = pd.to_numeric(named.loc[named["stim_file"] == files[0], "onset"], errors="coerce").dropna()
    return (files[0], float(onset.iloc[0])) if len(onset) else None


def _fill(template, values):
    try:
        return template.format(**values)
    except (KeyError, IndexError) as error:
        raise UsageError(f"stimulus specification: unknown placeholder {error} in '{template}' (use "
                         "{subject}, {task}, {session}, {run}, {rank})") from error
