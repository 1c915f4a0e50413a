"""The synthetic stories' sound, and a speech model's response to it (the planted speech truth)."""

import json

import numpy as np
import pandas as pd

from bids_encoding.ridge.scoring import zscore

AUDIO_RATE = 16000


def story_seconds(words):
    """The length of a story's sound: 1 s after its last word."""
    return float(words["onset"].iloc[-1] + words["duration"].iloc[-1]) + 1.0


def story_sound(words, rng):
    """A story's sound at :data:`AUDIO_RATE`: a voiced burst (140 Hz and four harmonics) per word, of a loudness
    drawn per word, silence between, and 1 s after the last word."""
    end = story_seconds(words)
    time = np.arange(int(end * AUDIO_RATE)) / AUDIO_RATE
    loudness = np.zeros_like(time)
    for onset, duration, gain in zip(words["onset"], words["duration"], rng.uniform(0.2, 1.0, len(words))):
        loudness[int(onset * AUDIO_RATE):int((onset + duration) * AUDIO_RATE)] = gain
    voice = sum(np.sin(2 * np.pi * 140.0 * harmonic * time) / harmonic for harmonic in range(1, 6))
    return (0.3 * loudness * voice + 0.001 * rng.standard_normal(len(time))).astype(np.float32)


def music(seconds, rng, silence=2.0):
    """``seconds`` of sound before a story (Narratives' audio files start with 13 s of music and 2 s of silence):
    quarter-second notes of random pitches of a major scale, then ``silence``; nothing for 0 s."""
    if seconds <= 0:
        return np.zeros(0, np.float32)
    n_tune, note = int(max(seconds - silence, 0.0) * AUDIO_RATE), AUDIO_RATE // 4
    pitches = 220.0 * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 11, 12], n_tune // note + 1) / 12)
    tune = 0.2 * np.sin(2 * np.pi * np.cumsum(np.repeat(pitches, note)[:n_tune]) / AUDIO_RATE)
    return np.concatenate([tune, np.zeros(int(seconds * AUDIO_RATE) - n_tune)]).astype(np.float32)


def write_sounds(bids_dir, layout, stories, runs, rng):
    """Each run's story sound where ``layout`` keeps it (``layout.sound_file``; 16 kHz, 16-bit PCM), after
    ``layout.audio_lead`` seconds of :func:`music`; one sound per story. Returns the paths by run number."""
    import soundfile

    sounds, paths = {}, {}
    for number, run in enumerate(runs, start=1):
        if run.aborted:
            continue
        if run.story not in sounds:
            sounds[run.story] = np.concatenate([music(layout.audio_lead, rng), story_sound(stories[run.story], rng)])
        paths[number] = bids_dir / layout.sound_file(number, run)
        paths[number].parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(paths[number], sounds[run.story], AUDIO_RATE, subtype="PCM_16")
    return paths


def name_sounds(bids_dir, paths, stories, runs):
    """A ``story`` row naming each run's sound (``stim_file``) at the top of its events, and the sidecar's
    description of it (the layouts whose events hold the words: ``layout.events_name_sounds``)."""
    sidecar_path = bids_dir / "task-story_events.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["trial_type"]["Levels"]["story"] = "the story's sound, from its start (stim_file)"
    sidecar["stim_file"] = {"Description": "The sound file in stimuli/"}
    sidecar_path.write_text(json.dumps(sidecar, indent=2) + "\n")
    for k, run in enumerate(runs, start=1):
        end = story_seconds(stories[run.story])
        events_path = bids_dir / f"task-story_run-{k}_events.tsv"
        events = pd.read_csv(events_path, sep="\t")
        story = pd.DataFrame({"onset": [run.origin], "duration": [end], "trial_type": ["story"],
                              "word": ["n/a"], "stim_file": [paths[k].name]})
        pd.concat([story, events.assign(stim_file="n/a")]).to_csv(events_path, sep="\t", index=False)


class SpeechTruth:
    """The planted speech response: the top principal components of one layer of a speech model's frames of each
    story's sound (:mod:`bids_encoding.features.speech`, the settings the app will use), put on the scans exactly as
    the app's design does (HRF, frames at ``onset + shift``), z-scored per run.

    Parameters
    ----------
    model : str
        A speech model (folder or hub id).
    paths : dict
        ``{story: written sound file}`` (read back as the app reads it: the 16-bit samples; any music before the
        story included).
    settings : SpeechSettings
    layer : int or None
        ``None``: the last layer.
    n_components : int
    """

    def __init__(self, model, paths, settings, layer, n_components):
        from bids_encoding.features import parse_model_spec
        from bids_encoding.features.speech import SpeechModel, chunked_states, read_speech_audio, window_states

        speech = SpeechModel.load(parse_model_spec(model))
        states = {}
        for story, path in paths.items():
            samples = read_speech_audio(path)
            states[story] = (window_states if settings.mode == "window" else chunked_states)(speech, samples,
                                                                                              settings)
        self.layer = states[next(iter(states))].shape[0] - 1 if layer is None else layer
        self.values = {story: value[self.layer] for story, value in states.items()}
        self.stride, self.n_components, self.basis = settings.stride, n_components, None

    def components(self, story, shift, repetition_time, n_scans):
        """``(n_scans, n_components)``: the planted components of one run whose sound file starts at scan time
        ``shift`` (the basis from the first run asked)."""
        from bids_encoding.design import DesignSettings
        from bids_encoding.features.acoustic import frames_table

        values = self.values[story]
        frames = frames_table(len(values), 1 / self.stride)
        design = zscore(DesignSettings().resampled(frames.assign(onset=frames["onset"] + shift), values, n_scans,
                                                   repetition_time))
        if self.basis is None:
            _, _, vt = np.linalg.svd(design - design.mean(0), full_matrices=False)
            self.basis = vt[:self.n_components].T
        components = design @ self.basis
        return (components - components.mean(0)) / components.std(0)
