"""Acoustic feature spaces computed from each run's stimulus audio: frames at a fixed rate on the audio's clock.

- ``envelope``: the broadband amplitude envelope, the magnitude of the analytic signal (Hilbert transform) of the
  mono sound, averaged over each frame (a boxcar low-pass at the frame rate), linear amplitude (not
  log-compressed). This is the envelope regressor of the fMRI studies of spoken stories: ``abs(hilbert(x))``
  then downsampled (Peelle's ``jp_getenveloperegressor``; the LeBel et al. 2023 replication reports of the Huth
  lab's data; Hasson lab's ``audenv``, as for the Narratives stories, Nastase et al. 2021). After the HRF, a
  log compression changes little at fMRI rates; the raw amplitude keeps silent gaps at 0.
- ``mel[:N_BANDS]``: a log mel spectrogram (default :data:`DEFAULT_MEL_BANDS` bands from 0 Hz to
  :data:`MEL_FMAX` or Nyquist): power spectra of 25 ms Hann windows every 1/10 frame (10 ms at 10 Hz),
  projected on triangular filters equally spaced on the HTK mel scale (``2595 log10(1 + f/700)``), averaged over
  each frame, then ``10 log10`` (dB, floored at -100 dB: digital silence). The spectral feature spaces of the
  Huth lab (de Heer et al. 2017, "spectral" features) and of the audio encoding-model literature are log
  spectrograms of this kind.

Frames: frame ``i`` covers ``[i / rate, (i + 1) / rate)`` seconds of the audio (:data:`FRAME_RATE`, 10 Hz), so
its ``onset`` and ``duration`` go through the design exactly as a word's do once put on the scan clock
(``onset + run.audio_origin``). The file is read in blocks (a two-hour Narratives audio never sits in memory
whole) with ``soundfile``, and the signal processing is scipy's (no librosa: the filterbank is twenty lines and
librosa would bring numba for nothing else). Results go through :class:`~bids_encoding.features.cache.FeatureCache`,
keyed by the audio file's content (SHA-256), the space and its settings.
"""

import hashlib
import logging
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from bids_encoding.errors import BadDataError, MissingInputError

LOGGER = logging.getLogger(__name__)
# Bump when the acoustic features change for the same audio and settings: the cache computes them again.
ACOUSTIC_CODE_VERSION = 1
FRAME_RATE = 10.0  # frames per second on the audio's clock
DEFAULT_MEL_BANDS = 32
MEL_FMAX = 8000.0  # Hz: speech's band; lower when the audio's Nyquist frequency is lower
WINDOW_SECONDS = 0.025  # the mel spectrogram's analysis window
SPECTRA_PER_FRAME = 10  # spectra averaged in each frame (a 10 ms hop at 10 Hz)
BLOCK_FRAMES = 600  # frames read and processed at once (60 s at 10 Hz)
MARGIN_SECONDS = 1.0  # audio read on each side of a block, so that the Hilbert transform has no block edges
LOG_FLOOR = 1e-10  # -100 dB: the power of digital silence


def _settings(space, dim):
    settings = {"frame_rate": FRAME_RATE, "block_frames": BLOCK_FRAMES, "margin_s": MARGIN_SECONDS}
    if space == "mel":
        settings.update(bands=dim, fmax=MEL_FMAX, window_s=WINDOW_SECONDS, spectra_per_frame=SPECTRA_PER_FRAME,
                        log_floor=LOG_FLOOR, scale="htk")
    return settings


# space -> (default dimension, function(blocks, sample_rate, dim) -> (n_frames, dim)); ids envelope, mel[:N_BANDS]
def _envelope(block, sample_rate, dim, start, margins):
    from scipy.fft import next_fast_len
    from scipy.signal import hilbert

    amplitude = np.abs(hilbert(block, next_fast_len(len(block))))[:len(block)]
    return _frame_means(amplitude[margins[0]:len(block) - margins[1]], start, sample_rate)[:, None]


def _mel(block, sample_rate, dim, start, margins):
    from scipy.fft import rfft
    from scipy.signal import get_window

    length = len(block) - margins[0] - margins[1]
    first, stop = _frame_range(start, length, sample_rate)
    window = max(16, int(round(WINDOW_SECONDS * sample_rate)))
    n_fft = 1 << (window - 1).bit_length()
    spectra = (stop - first) * SPECTRA_PER_FRAME
    hop = sample_rate / FRAME_RATE / SPECTRA_PER_FRAME
    # window centres on the file's clock, then relative to the block (margins included; zeros beyond the file)
    centres = np.round((first * SPECTRA_PER_FRAME + np.arange(spectra) + 0.5) * hop).astype(np.int64)
    padded = np.pad(block, (window, window))
    offsets = centres - (start - margins[0]) - window // 2 + window
    indices = np.clip(offsets[:, None] + np.arange(window)[None, :], 0, len(padded) - 1)
    segments = padded[indices] * get_window("hann", window).astype(np.float32)
    power = np.abs(rfft(segments, n=n_fft, axis=1)) ** 2
    mel = power @ mel_filterbank(sample_rate, n_fft, dim).T
    # spectra whose centre lies beyond the file's end are not averaged in
    inside = (centres < start + length).reshape(-1, SPECTRA_PER_FRAME)
    sums = (mel.reshape(-1, SPECTRA_PER_FRAME, dim) * inside[..., None]).sum(axis=1)
    means = sums / np.maximum(inside.sum(axis=1), 1)[:, None]
    return 10 * np.log10(np.maximum(means, LOG_FLOOR))


ACOUSTIC = {"envelope": (1, _envelope), "mel": (DEFAULT_MEL_BANDS, _mel)}


def mel_filterbank(sample_rate, n_fft, bands, fmin=0.0, fmax=MEL_FMAX):
    """Triangular filters ``(bands, n_fft // 2 + 1)`` equally spaced on the HTK mel scale between ``fmin`` and
    ``min(fmax, sample_rate / 2)``, each peaking at 1 on its centre frequency."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(fmin), to_mel(min(fmax, sample_rate / 2)), bands + 2))
    frequencies = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (frequencies - lower) / (centre - lower)
    falling = (upper - frequencies) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def _frame_range(start, length, sample_rate):
    """Frames ``[first, stop)`` whose onsets fall in samples ``[start, start + length)``."""
    samples = sample_rate / FRAME_RATE
    return math.ceil(start / samples - 1e-9), math.ceil((start + length) / samples - 1e-9)


def _frame_means(values, start, sample_rate):
    """The mean of ``values`` (samples ``start ..``) over each frame that starts in them (blocks hold whole
    frames; the file's last frame may be short)."""
    first, stop = _frame_range(start, len(values), sample_rate)
    bounds = np.round(np.arange(first, stop + 1) * sample_rate / FRAME_RATE).astype(np.int64) - start
    bounds = np.clip(bounds, 0, len(values))
    sums = np.add.reduceat(values, bounds[:-1]) if len(values) else np.zeros(0)
    return sums / np.maximum(np.diff(bounds), 1)


def _blocks(path, function, dim):
    """Run ``function`` over the audio in blocks of whole frames (with margins), concatenating the frames."""
    import soundfile

    try:
        stream = soundfile.SoundFile(str(path))
    except (RuntimeError, OSError, soundfile.LibsndfileError) as error:
        raise BadDataError(f"cannot read the audio file {path}: {error}") from error
    with stream:
        rate, total = stream.samplerate, stream.frames
        if total == 0:
            raise BadDataError(f"the audio file {path} holds no sample")
        block = int(round(BLOCK_FRAMES * rate / FRAME_RATE))
        margin = int(round(MARGIN_SECONDS * rate))
        out = []
        for start in range(0, total, block):
            begin, end = max(0, start - margin), min(total, start + block + margin)
            stream.seek(begin)
            samples = stream.read(end - begin, dtype="float32", always_2d=True)
            if len(samples) != end - begin:
                raise BadDataError(f"the audio file {path} ends early: {begin + len(samples)} of its {total} "
                                   "samples could be read")
            mono = samples.mean(axis=1)
            length = min(block, total - start)
            out.append(function(mono, rate, dim, start, (start - begin, end - start - length)))
        return np.concatenate(out).astype(np.float32), rate, total


def frames_table(n_frames, frame_rate=FRAME_RATE):
    """``onset`` and ``duration`` (seconds on the audio's clock) of ``n_frames`` frames."""
    import pandas as pd

    return pd.DataFrame({"onset": np.arange(n_frames) / frame_rate, "duration": np.full(n_frames, 1 / frame_rate)})


@lru_cache(maxsize=64)
def _digest(path, size, mtime_ns):
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def audio_record(path):
    """What identifies an audio file's content: its SHA-256 and size (hashed once per process for a given size
    and modification time), and its name."""
    path = Path(path)
    try:
        state = os.stat(path)
    except OSError as error:
        raise MissingInputError(f"the audio file {path} does not exist: fetch it (datalad get) or fix the stimulus "
                                "specification's audio pattern or the events' stim_file") from error
    return {"name": path.name, "size": state.st_size, "sha256": _digest(str(path), state.st_size, state.st_mtime_ns)}


def acoustic_record(spec, audio_path):
    """The cache record of one acoustic space of one audio file."""
    return {"what": "acoustic", "model_id": spec.model_id, "model_label": spec.label, "space": spec.location,
            "settings": _settings(spec.location, spec.dim), "audio": audio_record(audio_path),
            "acoustic_code": ACOUSTIC_CODE_VERSION}


def acoustic_features(spec, audio_path, cache):
    """Frames of one acoustic space of one audio file, computed once through the cache.

    Parameters
    ----------
    spec : ModelSpec
        An acoustic space (``spec.is_acoustic``: ``envelope``, ``mel[:N_BANDS]``).
    audio_path : Path
        The run's stimulus audio (``Run.audio``; any format libsndfile reads: WAV, FLAC, OGG, ...).
    cache : FeatureCache

    Returns
    -------
    frames : pandas.DataFrame
        ``onset``, ``duration``: seconds on the audio's clock (frame ``i`` starts at ``i / FRAME_RATE``); add the
        run's ``audio_origin`` to put them on the scan's clock.
    values : numpy.ndarray
        ``(n_frames, spec.dim)`` float32.
    """
    from bids_encoding import dependencies

    if spec.location not in ACOUSTIC:
        raise ValueError(f"{spec.model_id} is not an acoustic space ({', '.join(ACOUSTIC)})")
    dependencies.require(dependencies.ACOUSTIC, f"the feature space {spec.model_id}")
    record = acoustic_record(spec, audio_path)
    function = ACOUSTIC[spec.location][1]

    def compute(missing):
        values, rate, total = _blocks(audio_path, function, spec.dim)
        LOGGER.info("computed %s of %s: %d frames at %g Hz (%.1f s of audio at %d Hz)", spec.model_id,
                    Path(audio_path).name, len(values), FRAME_RATE, total / rate, rate)
        return {0: values}, {"n_frames": len(values), "frame_rate": FRAME_RATE, "sample_rate": rate,
                             "n_samples": total}

    arrays, info, computed = cache.get_or_compute(record, [0], compute)
    if not computed:
        LOGGER.info("reusing cached %s of %s (%s)", spec.model_id, Path(audio_path).name, cache.entry(record))
    values = np.asarray(arrays[0])
    return frames_table(len(values), info["frame_rate"]), values
