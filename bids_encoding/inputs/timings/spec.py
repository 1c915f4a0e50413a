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

``annotation`` and string ``options`` take the placeholders ``{subject}``,
``{task}``, ``{session}``, ``{run}`` and ``{rank}`` (the run's rank, from 1,
among the participant's runs of the task ordered by their integer run label,
aborted runs left out). ``origin`` is a number of seconds (0: the annotation
counts from the first volume), or ``"events:<trial_type>"``: the onset of the
first events.tsv row that names the same ``stim_file`` as the first
``<trial_type>`` row (Narratives: the audio file starts with the music block,
before the story block), or ``"events-row:<trial_type>"``: the onset of the
first ``<trial_type>`` row itself (an annotation that counts from that block).
"""

import fnmatch
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bids_encoding.errors import BadDataError, MissingInputError, UsageError
from bids_encoding.inputs.timings import READERS
from bids_encoding.inputs.timings.base import WordTimings

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
            extra = set(entry) - {"annotation", "format", "origin", "options", "language"}
            if extra:
                raise UsageError(f"stimulus specification {name}: [[stimulus]] {number} has unknown key(s) "
                                 f"{', '.join(sorted(extra))}")
            origin = entry.get("origin", 0.0)
            if not isinstance(origin, (int, float)) and not str(origin).startswith(("events:", "events-row:")):
                raise UsageError(f"stimulus specification {name}: origin must be seconds, 'events:<trial_type>' "
                                 "or 'events-row:<trial_type>'")
            entries.append(StimulusEntry(entry["annotation"], entry["format"],
                                         float(origin) if isinstance(origin, (int, float)) else origin,
                                         dict(entry.get("options", {})), match, entry.get("language")))
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


def _fill(template, values):
    try:
        return template.format(**values)
    except (KeyError, IndexError) as error:
        raise UsageError(f"stimulus specification: unknown placeholder {error} in '{template}' (use "
                         "{subject}, {task}, {session}, {run}, {rank})") from error
