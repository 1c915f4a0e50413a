"""Layouts of the reference datasets for the synthetic generator: the same planted story, stored as
Le Petit Prince (ds003643), Narratives (ds002345) or LeBel et al. (ds003020) store theirs.

Each layout says where every run's BOLD goes, when its audio starts after the
first volume (the origin), and writes the word timings in that dataset's own
annotation format with its quirks (docs/datasets/). ``bids`` is the demo's
own layout: word rows in events.tsv.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

LEBEL_STORIES = ("alternateithicatom", "souls", "avatar", "legacy", "odetostepfather", "undertheinfluence")
NARRATIVES_STORIES = ("pieman", "tunnel", "lucy", "prettymouth", "merlin", "sherlock")
NARRATIVES_SPACE = "MNI152NLin2009cAsym"
NARRATIVES_MUSIC = 15.0  # seconds of music (13 s) and silence at the start of each audio file


@dataclass(frozen=True)
class RunFile:
    """One BOLD run of a participant: its file, the story part it plays, and when the audio starts."""

    path: str
    story: int
    origin: float = 0.0
    aborted: bool = False
    task: str = "story"


def _json(path, data):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


class DemoLayout:
    """The demo's own layout: ``task-story``, ``run-<k>``, word rows in top-level events.tsv files."""

    name = "bids"
    audio_lead = 0.0  # seconds of audio before the first word's place in the story timing
    fmriprep = None  # the fMRIPrep generation whose brain masks and confounds go beside the BOLD ("20.0", "24")

    def subjects(self, n):
        return [f"{i + 1:02d}" for i in range(n)]

    def runs(self, index, subject, n_stories, repeats):
        stories = list(range(n_stories)) + [0] * repeats
        return [RunFile(f"sub-{subject}/func/sub-{subject}_task-story_run-{k}_bold.nii.gz", story)
                for k, story in enumerate(stories, start=1)]

    def write_metadata(self, bids_dir, stories, repetition_time, runs_by_subject):
        _json(bids_dir / "task-story_bold.json", {"TaskName": "story", "RepetitionTime": repetition_time})
        _json(bids_dir / "task-story_events.json", {
            "trial_type": {"Description": "Kind of event", "Levels": {"word": "a spoken word"}},
            "word": {"Description": "The word as written in the story's text, punctuation included"}})
        first = next(iter(runs_by_subject.values()))
        for k, run in enumerate(first, start=1):
            stories[run.story].assign(trial_type="word")[["onset", "duration", "trial_type", "word"]].to_csv(
                bids_dir / f"task-story_run-{k}_events.tsv", sep="\t", index=False)

    stimuli = None
    events_name_sounds = True  # the sound is named by a ``story`` row of the events (``stim_file``)

    def sound_file(self, number, run):
        """Where run ``number``'s sound goes, relative to the BIDS root (where the dataset keeps its audio)."""
        return f"stimuli/story_run-{number}.wav"

    def transcript_file(self, number, run):
        """Where run ``number``'s transcript goes, relative to the dataset's parent folder: where the dataset
        keeps it, else in ``transcripts/`` named as ``--transcripts`` looks for it."""
        return f"transcripts/task-{run.task}_run-{number}.txt"


class LeBelLayout(DemoLayout):
    """ds003020: one BIDS task per story over sessions, no events.tsv; TextGrids in ``derivative/TextGrids``
    (word tier with ``sp``, ``{br}``, ``sentence_start`` marks); the sound starts 10 s after the first volume."""

    name = "lebel"
    origin = 10.0
    stimuli = "lebel"
    events_name_sounds = False

    def sound_file(self, number, run):
        return f"stimuli/{run.task}.wav"

    def transcript_file(self, number, run):
        return f"transcripts/{run.task}.txt"

    def subjects(self, n):
        return [f"UTS{i + 1:02d}" for i in range(n)]

    def runs(self, index, subject, n_stories, repeats):
        runs = []
        for story in range(n_stories):
            task, session = LEBEL_STORIES[story], story // 2 + 1
            runs.append(RunFile(f"sub-{subject}/ses-{session}/func/sub-{subject}_ses-{session}_task-{task}_bold.nii.gz",
                                story, self.origin, task=task))
        return runs

    def write_metadata(self, bids_dir, stories, repetition_time, runs_by_subject):
        first = next(iter(runs_by_subject.values()))
        for run in first:
            _json(bids_dir / f"task-{run.task}_bold.json", {"TaskName": run.task, "RepetitionTime": repetition_time})
            _write_textgrid(bids_dir / "derivative" / "TextGrids" / f"{run.task}.TextGrid", stories[run.story])
        (bids_dir / ".bidsignore").write_text("derivative/\n")
        scans = {run.task: nib.load(bids_dir / run.path).shape[3] for run in first}
        _json(bids_dir / "derivative" / "respdict.json", scans)


class LePetitPrinceLayout(DemoLayout):
    """ds003643 (EN): raw multi-echo runs (``_echo-1..3_bold``, sidecars with the real misspelled
    ``ManufacterersModelName``, 4 extra volumes before the audio) whose run labels are scanner indices (a gap,
    an aborted run of a few dozen volumes); the preprocessed BOLD in ``derivatives/sub-*/func/`` as
    ``space-MNIColin27_desc-preproc`` (no dataset_description.json, no aborted run, extra volumes removed);
    words in ``annotation/EN/lppEN_word_information.csv`` (byte-order mark, blank rows, ``section`` = the
    run's rank); times from the section's audio, which starts with the preprocessed run."""

    name = "lpp"
    stimuli = "lpp"
    extra_raw_volumes = 4
    events_name_sounds = False

    def sound_file(self, number, run):
        return f"stimuli/task-lppEN_section-{run.story + 1}.wav"

    def transcript_file(self, number, run):
        return f"transcripts/task-lppEN_section-{run.story + 1}.txt"

    def subjects(self, n):
        return [f"EN{57 + i:03d}" for i in range(n)]

    def runs(self, index, subject, n_stories, repeats):
        preproc = (f"derivatives/sub-{subject}/func/sub-{subject}_task-lppEN_run-{{:02d}}"
                   "_space-MNIColin27_desc-preproc_bold.nii.gz")
        raw = f"sub-{subject}/func/sub-{subject}_task-lppEN_run-{{:02d}}_echo-1_bold.nii.gz"
        if index % 2 == 0:  # sub-EN057: run-15 .. ; section = rank
            return [RunFile(preproc.format(15 + story), story, task="lppEN") for story in range(n_stories)]
        runs, label = [], 1  # sub-EN058: an aborted run-02 (raw only), then a gap in the labels
        for story in range(n_stories):
            if story == 1:
                runs.append(RunFile(raw.format(label), 0, aborted=True, task="lppEN"))
                label += 2
            runs.append(RunFile(preproc.format(label), story, task="lppEN"))
            label += 1
        return runs

    def write_metadata(self, bids_dir, stories, repetition_time, runs_by_subject):
        rows = []
        for section, words in enumerate(stories, start=1):
            for onset, duration, word in words[["onset", "duration", "word"]].itertuples(index=False):
                rows.append((word, round(onset, 3), round(onset + duration, 3), section, word.lower()))
            rows.append((" ", round(onset + duration, 3), round(onset + duration + 0.1, 3), section, ""))  # blank
        path = bids_dir / "annotation" / "EN" / "lppEN_word_information.csv"
        path.parent.mkdir(parents=True)
        table = pd.DataFrame(rows, columns=["word", "onset", "offset", "section", "lemma"])
        path.write_bytes(b"\xef\xbb\xbf" + table.to_csv(index=False).encode())
        for runs in runs_by_subject.values():
            for run in runs:
                written = nib.load(bids_dir / run.path)
                n_scans = written.shape[3] + (0 if run.aborted else self.extra_raw_volumes)
                raw = run.path if run.aborted else _lpp_raw_name(run.path)
                for echo, echo_time in ((1, 0.0128), (2, 0.02733), (3, 0.04186)):
                    name = bids_dir / raw.replace("_echo-1_", f"_echo-{echo}_")
                    if not name.exists():  # echo 1 of an aborted run is already written
                        image = nib.Nifti1Image(np.zeros((2, 2, 2, n_scans), np.int16), written.affine)
                        image.header["pixdim"][4] = repetition_time
                        name.parent.mkdir(parents=True, exist_ok=True)
                        image.to_filename(name)
                    _json(str(name).replace(".nii.gz", ".json"), {
                        "TaskName": "lppEN", "RepetitionTime": repetition_time, "FlipAngle": 77,
                        "Manufacturer": "GE Healthcare", "ManufacterersModelName": "Discovery MR750",
                        "EchoTime": echo_time})


def _lpp_raw_name(preproc_path):
    """``derivatives/sub-X/func/sub-X_task-T_run-K_space-S_desc-preproc_bold.nii.gz`` -> the raw echo-1 name."""
    name = Path(preproc_path).name.replace("_space-MNIColin27_desc-preproc_bold", "_echo-1_bold")
    return str(Path(*Path(preproc_path).parts[1:-1]) / name)


class NarrativesLayout(DemoLayout):
    """ds002345: one run per story, each its own task; events.tsv holds blocks (music, then story) naming
    the audio file, whose start differs between participants; gentle ``align.csv`` per story in
    ``stimuli/gentle/<story>/``, times from the audio file's start (unaligned and ``<unk>`` words included);
    the preprocessed BOLD in fMRIPrep 20.0's naming under ``derivatives/fmriprep/``; the audio file
    (``stimuli/<story>_audio.wav``) starts with the music."""

    name = "narratives"
    stimuli = "narratives"
    audio_lead = NARRATIVES_MUSIC
    fmriprep = "20.0"
    events_name_sounds = False  # the events' music and story rows name it

    def sound_file(self, number, run):
        return f"stimuli/{run.task}_audio.wav"

    def transcript_file(self, number, run):
        return f"bids/stimuli/gentle/{run.task}/transcript.txt"

    def subjects(self, n):
        return [f"{i + 1:03d}" for i in range(n)]

    def runs(self, index, subject, n_stories, repeats):
        music_onset = (0.0, 4.5, 3.0)[index % 3]  # the audio starts at a different scan time per participant
        return [RunFile(f"derivatives/fmriprep/sub-{subject}/func/sub-{subject}_task-{NARRATIVES_STORIES[story]}"
                        f"_space-{NARRATIVES_SPACE}_res-native_desc-preproc_bold.nii.gz", story, music_onset,
                        task=NARRATIVES_STORIES[story]) for story in range(n_stories)]

    def write_metadata(self, bids_dir, stories, repetition_time, runs_by_subject):
        first = next(iter(runs_by_subject.values()))
        for run in first:
            _json(bids_dir / f"task-{run.task}_bold.json", {"TaskName": run.task, "RepetitionTime": repetition_time})
            words = stories[run.story]
            lines = []
            for i, (onset, duration, word) in enumerate(words[["onset", "duration", "word"]].itertuples(index=False)):
                clean = word.strip(".,;:!?'\"").lower()
                if i % 37 == 5:
                    lines.append(f"{word},,,")  # not found in the audio
                else:
                    aligned = "<unk>" if i % 53 == 7 else clean
                    start, end = onset + self.audio_lead, onset + duration + self.audio_lead
                    lines.append(f"{word},{aligned},{start:.2f},{end:.2f}")
            path = bids_dir / "stimuli" / "gentle" / run.task / "align.csv"
            path.parent.mkdir(parents=True)
            path.write_text("\n".join(lines) + "\n")
        for runs in runs_by_subject.values():
            for run in runs:
                audio = f"{run.task}_audio.wav"
                story_length = stories[run.story]["onset"].iloc[-1] + 5.0
                events = pd.DataFrame({"onset": [run.origin, run.origin + NARRATIVES_MUSIC],
                                       "duration": [13.0, round(story_length, 1)], "trial_type": ["music", "story"],
                                       "stim_file": [audio, audio]})
                raw = bids_dir / _narratives_raw(run.path)
                raw.parent.mkdir(parents=True, exist_ok=True)
                events.to_csv(str(raw).replace("_bold.nii.gz", "_events.tsv"), sep="\t", index=False)
                written = nib.load(bids_dir / run.path)
                placeholder = nib.Nifti1Image(np.zeros((2, 2, 2, written.shape[3]), np.int16), np.eye(4))
                placeholder.header["pixdim"][4] = repetition_time
                placeholder.to_filename(raw)  # the raw series: never read when the preprocessed one exists
        _json(bids_dir / "derivatives" / "fmriprep" / "dataset_description.json", {
            "Name": "fMRIPrep - fMRI PREProcessing workflow", "BIDSVersion": "1.4.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "20.0.5"}]})


def _narratives_raw(preproc_path):
    """fMRIPrep 20.0's ``derivatives/fmriprep/sub-X/func/sub-X_task-T_space-S_res-native_desc-preproc_bold``
    -> the raw ``sub-X/func/sub-X_task-T_bold``."""
    name = Path(preproc_path).name.replace(f"_space-{NARRATIVES_SPACE}_res-native_desc-preproc", "")
    return str(Path(*Path(preproc_path).parts[2:-1]) / name)


class FmriprepLayout(DemoLayout):
    """The demo's dataset preprocessed by a current fMRIPrep (>= 20.2): raw runs with their events.tsv, and in
    ``derivatives/fmriprep/`` the ``space-MNI152NLin2009cAsym_res-2_desc-preproc_bold`` runs with their
    ``desc-brain_mask`` and ``desc-confounds_timeseries.tsv``."""

    name = "fmriprep"
    fmriprep = "24"
    space, res, pipeline = NARRATIVES_SPACE, "2", "fmriprep"

    def runs(self, index, subject, n_stories, repeats):
        stories = list(range(n_stories)) + [0] * repeats
        return [RunFile(f"derivatives/{self.pipeline}/sub-{subject}/func/sub-{subject}_task-story_run-{k}_space-"
                        f"{self.space}_res-{self.res}_desc-preproc_bold.nii.gz", story)
                for k, story in enumerate(stories, start=1)]

    def write_metadata(self, bids_dir, stories, repetition_time, runs_by_subject):
        super().write_metadata(bids_dir, stories, repetition_time, runs_by_subject)
        for runs in runs_by_subject.values():
            for run in runs:
                written = nib.load(bids_dir / run.path)
                raw = bids_dir / Path(*Path(run.path).parts[2:-1]) / Path(run.path).name.replace(
                    f"_space-{self.space}_res-{self.res}_desc-preproc", "")
                raw.parent.mkdir(parents=True, exist_ok=True)
                placeholder = nib.Nifti1Image(np.zeros((2, 2, 2, written.shape[3]), np.int16), np.eye(4))
                placeholder.header["pixdim"][4] = repetition_time
                placeholder.to_filename(raw)
        _json(bids_dir / "derivatives" / self.pipeline / "dataset_description.json", self.description)

    description = {"Name": "fMRIPrep - fMRI PREProcessing workflow", "BIDSVersion": "1.9.0",
                   "DatasetType": "derivative", "GeneratedBy": [{"Name": "fMRIPrep", "Version": "24.1.1"}]}


class DemoPreprocessedLayout(FmriprepLayout):
    """The demo of ``bids_encoding demo``: the demo's story, preprocessed into its synthetic template space
    ``DemoMNI`` (an 8 mm grid laid out as MNI152) as fMRIPrep would write it, brain masks and confounds
    included, so that hemispheres, the group level and the reports apply as on real template-space data."""

    name = "demo"
    space, res, pipeline = "DemoMNI", "8", "preprocessed"
    description = {"Name": "bids_encoding demo: preprocessed into the synthetic DemoMNI space", "BIDSVersion": "1.9.0",
                   "DatasetType": "derivative", "GeneratedBy": [{"Name": "bids_encoding demo generator"}]}


def phone_count(word):
    """How many phones the synthetic TextGrids give a word: one per two letters, at least one."""
    return max(1, sum(c.isalnum() for c in word) // 2)


def _phones(start, stop, label):
    """The phone intervals of one word interval (``sp`` for a silence or a mark)."""
    if label in ("sp", "{br}", "sentence_start", "sentence_end"):
        return [(start, stop, "sp")]
    n = phone_count(label)
    bounds = [start + (stop - start) * k / n for k in range(n + 1)]
    return [(a, b, ("AH0", "T", "N", "IY1", "S")[k % 5]) for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


LAYOUTS = {layout.name: layout for layout in (DemoLayout(), LeBelLayout(), LePetitPrinceLayout(), NarrativesLayout(),
                                               FmriprepLayout(), DemoPreprocessedLayout())}


def _write_textgrid(path, words):
    """A long-format TextGrid with a phone tier and a word tier; silences are ``sp``, with a ``{br}`` breath and
    ``sentence_start`` marks as in the LeBel TextGrids; each word is cut into ``phone_count(word)`` phones
    (ARPAbet-like labels), silences are ``sp`` phones."""
    intervals, cursor = [], 0.0
    for i, (onset, duration, word) in enumerate(words[["onset", "duration", "word"]].itertuples(index=False)):
        if onset > cursor + 1e-6:
            intervals.append((cursor, onset, "{br}" if i % 29 == 3 else "sp"))
        intervals.append((onset, onset + duration, word.strip(".,;:!?\"")))
        cursor = onset + duration
    end = cursor + 2.0
    intervals.append((cursor, end, "sentence_end"))
    intervals.insert(0, (0.0, intervals[0][0], "sentence_start")) if intervals[0][0] > 0 else None
    tiers = [("phone", [phone for start, stop, label in intervals for phone in _phones(start, stop, label)]),
             ("word", intervals)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textgrid_text(tiers, end))


def textgrid_text(tiers, end):
    """A long-format Praat TextGrid of interval tiers ``[(name, [(start, stop, label), ...]), ...]``."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {end:.3f}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for number, (name, entries) in enumerate(tiers, start=1):
        lines += [f"    item [{number}]:", '        class = "IntervalTier"', f'        name = "{name}"',
                  "        xmin = 0", f"        xmax = {end:.3f}", f"        intervals: size = {len(entries)}"]
        for k, (start, stop, label) in enumerate(entries, start=1):
            lines += [f"        intervals [{k}]:", f"            xmin = {start:.3f}", f"            xmax = {stop:.3f}",
                      f'            text = "{label}"']
    return "\n".join(lines) + "\n"
