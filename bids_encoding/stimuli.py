"""Stimuli: what a run played, which runs repeat a stimulus, and in what context each was heard.

One place for these answers: the participant level groups runs for
cross-validation and noise ceilings with :class:`StimulusSequence`, the
feature engine keys its cache with :attr:`Stimulus.cache_key`, and the ridge
groups runs with :func:`stimulus_groups`.
"""

from dataclasses import dataclass
from pathlib import Path

from bids_encoding.features.cache import stimulus_fingerprint


@dataclass(frozen=True)
class Stimulus:
    """The words of one run, and the words heard just before it when context continues across runs.

    Attributes
    ----------
    fingerprint : str
        Hash of the words and their timings only: what makes two runs the
        same stimulus (cross-validation groups, noise ceilings).
    words : tuple of str
    context_words : tuple of str or None
    phones : tuple of tuple of str or None
        Each word's phones (their labels), where the word timings have a phone tier (not part of the keys: the same
        words and timings come with the same phones).
    language : str or None
        The language the stimulus specification gives (``language`` of its ``[[stimulus]]`` entry).
    audio : Path or None
        The run's stimulus audio (``Run.audio``), for the acoustic feature spaces; not part of the keys, which
        are the words' (the acoustic features' cache record holds the file's content: :attr:`audio_record`).
    cache_key : str
        Hash of the words, timings, context and transcript: what makes two runs' features
        equal (feature cache, design matrices); the fingerprint when there is
        no context and no transcript.
    read_words : tuple of str or None
        What the language models read when the run has a transcript (its words, and the timed words it lacks:
        :class:`~bids_encoding.inputs.transcripts.TranscriptAlignment`); ``None``: the words.
    word_ranges : tuple of (int, int) or None
        With ``read_words``: the first and last of them whose tokens each word takes.
    """

    fingerprint: str
    words: tuple
    context_words: tuple | None = None
    cache_key: str = ""
    phones: tuple | None = None
    language: str | None = None
    audio: Path | None = None
    read_words: tuple | None = None
    word_ranges: tuple | None = None

    def __post_init__(self):
        if not self.cache_key:
            object.__setattr__(self, "cache_key", self.fingerprint)

    @property
    def text(self):
        """The words the language models read: ``read_words`` with a transcript, else ``words``."""
        return self.read_words if self.read_words is not None else self.words

    @property
    def audio_record(self):
        """The audio file's name, size and SHA-256 (what the acoustic features' cache record holds), or ``None``."""
        from bids_encoding.features.acoustic import audio_record

        return None if self.audio is None else audio_record(self.audio)


def run_stimuli(runs, continuous=False):
    """One :class:`Stimulus` per run, in run order.

    Parameters
    ----------
    runs : list of Run
        One participant's runs of one task, in order.
    continuous : bool
        Each run's context continues from the previous run's words.
    """
    stimuli, previous = [], None
    for run in runs:
        context = previous if continuous else None
        audio_words = getattr(run, "audio_words", None)
        heard = run.words if audio_words is None else audio_words  # on the audio's clock: one story, one key
        fingerprint = stimulus_fingerprint(heard)
        cache_key = stimulus_fingerprint(heard, context.cache_key) if context else fingerprint
        phones = tuple(tuple(str(labels).split()) for labels in run.words["phones"].fillna("")) \
            if "phones" in run.words else None
        language = (getattr(run, "word_source", None) or {}).get("Language")
        transcript = getattr(run, "transcript_alignment", None)
        if transcript is not None:
            cache_key = stimulus_fingerprint(heard, f"{cache_key}|transcript:{transcript.digest}")
        stimuli.append(Stimulus(fingerprint, tuple(run.words["word"]), context.text if context else None,
                                cache_key, phones, language, getattr(run, "audio", None),
                                transcript.read_words if transcript else None,
                                transcript.word_ranges if transcript else None))
        previous = stimuli[-1]
    return stimuli


def stimulus_groups(keys):
    """Indices of the runs that share a stimulus key, in order of first appearance.

    >>> stimulus_groups(["a", "b", "a"])
    [[0, 2], [1]]
    """
    groups = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return list(groups.values())


@dataclass(frozen=True)
class StimulusSequence:
    """The stimuli of one participant's runs of a task, in run order.

    Attributes
    ----------
    stimuli : tuple of Stimulus
    """

    stimuli: tuple

    @classmethod
    def of_runs(cls, runs, continuous=False):
        return cls(tuple(run_stimuli(runs, continuous)))

    @property
    def keys(self):
        """Each run's stimulus fingerprint (words and timings)."""
        return [stimulus.fingerprint for stimulus in self.stimuli]

    @property
    def groups(self):
        """Runs of each distinct stimulus: the outer cross-validation folds, in order."""
        return stimulus_groups(self.keys)

    @property
    def repeated_groups(self):
        """Runs of each stimulus presented more than once (noise ceilings)."""
        return [group for group in self.groups if len(group) > 1]

    def test_fold(self, rule):
        """The one outer fold a fixed test stimulus makes (``rule`` ``most-presented``: the stimulus presented
        most often, the last of equals), or ``None`` (``rule`` ``None``: leave one stimulus out)."""
        if rule is None:
            return None
        if rule != "most-presented":
            raise ValueError(f"unknown test stimulus rule '{rule}'")
        sizes = [len(group) for group in self.groups]
        return max(range(len(sizes)), key=lambda fold: (sizes[fold], fold))

    @property
    def repeated_folds(self):
        """Indices of the folds whose stimulus was presented more than once."""
        return [fold for fold, group in enumerate(self.groups) if len(group) > 1]
