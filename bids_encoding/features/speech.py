"""Speech-model features (HuBERT, WavLM, wav2vec 2.0, the Whisper encoder): every layer's state per 0.1 s frame of
each run's stimulus audio.

Antonello, Vaidya & Huth (2023)'s procedure (``extract_speech_features.py`` of HuthLab/encoding-model-scaling-laws,
``--chunksz 100 --contextsz 16000``), the default ``window`` mode: for each frame end ``t`` (0.1, 0.2, ... s) the
model reads the audio ``[max(0, t - 16.1 s), t)`` alone, and the frame's feature is the state of the model's last
output frame (for Whisper, whose input is padded to 30 s, the last encoder frame that the audio reaches through its
two convolutions). Each frame sees its past only. Snippets shorter than the model's first output frame (400
samples) give no feature: those frames are zeros. Windows of one length are batched.

The ``chunked`` mode is cheaper (one pass per ``chunk`` seconds, with ``context`` seconds of audio before it):
each frame's state is that of the model's output frame that ends with it, so it also sees the audio after it up to
the chunk's end; it equals the window mode only where the model's receptive field does not reach past the frame
(the convolutional feature encoder's output, tested).

The audio is read with soundfile (one channel: a multichannel file stops the run), resampled to the model's rate
with soxr (a resampler made for it: its "HQ" quality) and prepared by the model's own feature extractor
(``preprocessor_config.json``; else transformers' defaults for its kind, recorded). Results go through the feature
cache, keyed by the audio's content, the model and these settings.
"""

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bids_encoding.errors import BadDataError, UsageError

LOGGER = logging.getLogger(__name__)
# Bump when the speech features change for the same audio, model and settings: the cache computes them again.
SPEECH_CODE_VERSION = 1
MODEL_RATE = 16000  # Hz: every supported speech model's input rate
WHISPER_TYPES = ("whisper",)
WHISPER_SECONDS = 30.0  # Whisper's encoder reads 30 s inputs (shorter ones padded)


@dataclass(frozen=True)
class SpeechSettings:
    """How speech features are computed (the sidecars' ``Features``).

    Attributes
    ----------
    mode : str
        ``window`` (Antonello et al.: a causal window per frame) or ``chunked`` (one pass per chunk).
    stride : float
        Seconds between frames (Antonello et al.'s ``chunksz``, 0.1 s).
    context : float
        Seconds of audio before each frame (16 s: with the frame, a 16.1 s window).
    chunk : float
        ``chunked`` mode: seconds of frames per pass.
    batch_size : int
        Windows per forward pass.
    """

    mode: str = "window"
    stride: float = 0.1
    context: float = 16.0
    chunk: float = 10.0
    batch_size: int = 8

    def record(self):
        return {**asdict(self), "sample_rate": MODEL_RATE, "resampler": "soxr HQ",
                "frame": "the state of the model's last output frame before each frame's end"}


def is_speech_config(config):
    """A speech encoder that transformers loads from a waveform or its log-mel spectrogram: the architectures of
    transformers' audio-classification mapping (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, SEW, UniSpeech,
    Whisper, ...)."""
    from transformers import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING

    return type(config) in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING or config.model_type in WHISPER_TYPES


def read_speech_audio(path, rate=MODEL_RATE):
    """The mono audio of ``path`` at ``rate`` (float32); one-line errors for an unreadable or multichannel file."""
    import soundfile
    import soxr

    try:
        samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError) as error:
        raise BadDataError(f"cannot read the audio file {path}: {error}") from error
    if samples.shape[1] != 1:
        raise BadDataError(f"the audio file {path} has {samples.shape[1]} channels and speech models read one: mix "
                           "it down to mono (e.g. sox in.wav -c 1 out.wav) and point the stimulus specification or "
                           "stim_file to it")
    if not len(samples):
        raise BadDataError(f"the audio file {path} holds no sample")
    mono = samples[:, 0]
    return mono if file_rate == rate else soxr.resample(mono, file_rate, rate, quality="HQ").astype(np.float32)


class SpeechModel:
    """A loaded speech encoder and its feature extractor, giving every layer's states for a batch of snippets."""

    def __init__(self, model, feature_extractor, device="cpu"):
        self.model, self.feature_extractor, self.device = model, feature_extractor, device
        self.is_whisper = model.config.model_type in WHISPER_TYPES
        self.encoder = model.get_encoder() if self.is_whisper else model

    @classmethod
    def load(cls, spec, device="cpu", dtype=None, trust_remote_code=False):
        """From a hub id or directory (``untrained:``: the config with seed ``UNTRAINED_SEED``)."""
        import torch
        from transformers import AutoModel

        from bids_encoding.features.models import LOAD_ERRORS, UNTRAINED_SEED, _hub_error, load_config

        kwargs = {"revision": spec.revision, "trust_remote_code": trust_remote_code}
        try:
            if spec.untrained:
                torch.manual_seed(UNTRAINED_SEED)
                model = AutoModel.from_config(load_config(spec, trust_remote_code), dtype=dtype)
            else:
                model = AutoModel.from_pretrained(spec.location, dtype=dtype, **kwargs)
        except LOAD_ERRORS as error:
            raise _hub_error(spec, error) from error
        model.eval().to(device)
        return cls(model, feature_extractor(spec, model.config, kwargs), device)

    def states(self, snippets):
        """Every layer's state at the end of each snippet (all of one length): ``(n_layers + 1, n, hidden)``."""
        import torch

        prepared = self.feature_extractor(list(snippets), sampling_rate=MODEL_RATE, return_tensors="pt",
                                          **({"return_attention_mask": True} if self.is_whisper else {}))
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            if self.is_whisper:
                out = self.encoder(prepared["input_features"].to(self.device, dtype), output_hidden_states=True)
                last = self._whisper_last_frame(prepared["attention_mask"][0])
            else:
                out = self.model(prepared["input_values"].to(self.device, dtype), output_hidden_states=True)
                last = -1
            return torch.stack([h[:, last] for h in out.hidden_states]).float().cpu().numpy()

    def sequence_states(self, samples):
        """Every layer's states of one snippet at each output frame: ``(n_layers + 1, n_frames, hidden)``."""
        import torch

        prepared = self.feature_extractor([samples], sampling_rate=MODEL_RATE, return_tensors="pt")
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            if self.is_whisper:  # padded to 30 s: the frames beyond the audio are cut by the caller's indices
                out = self.encoder(prepared["input_features"].to(self.device, dtype), output_hidden_states=True)
            else:
                out = self.model(prepared["input_values"].to(self.device, dtype), output_hidden_states=True)
        return torch.stack([h[0] for h in out.hidden_states]).float().cpu().numpy()

    def frame_at(self, n_samples):
        """The output frame whose state a frame ending ``n_samples`` into the input takes: the last one its
        receptive field ends by (Whisper: the last one that audio reaches, as :meth:`_whisper_last_frame`)."""
        if self.is_whisper:
            return (n_samples // self.feature_extractor.hop_length + 1) // 2
        return (n_samples - self.first_output_samples()) // self.output_stride()

    def _whisper_last_frame(self, mask):
        """The last encoder frame that the unpadded input reaches through the encoder's two convolutions (as
        Antonello et al.: the attention mask run through convolutions of ones)."""
        import torch

        reach = mask[None, None].float()
        for conv in (self.encoder.conv1, self.encoder.conv2):
            ones = torch.ones((1, 1) + tuple(conv.kernel_size))
            reach = torch.nn.functional.conv1d(reach, ones, stride=conv.stride, padding=conv.padding,
                                               dilation=conv.dilation)
        return int(reach[0, 0].nonzero().max())

    def first_output_samples(self):
        """Samples of audio that give the first output frame (the feature encoder's receptive field; Whisper: one
        mel hop)."""
        if self.is_whisper:
            return self.feature_extractor.hop_length
        config = self.model.config
        size = 1
        for kernel, stride in zip(reversed(config.conv_kernel), reversed(config.conv_stride)):
            size = (size - 1) * stride + kernel
        return size

    def output_stride(self):
        """Samples between two output frames (the feature encoder's total stride)."""
        if self.is_whisper:
            return self.feature_extractor.hop_length * 2
        return int(np.prod(self.model.config.conv_stride))


def feature_extractor(spec, config, kwargs):
    """The model's own feature extractor, else transformers' default for its kind (Whisper's log-mel with the
    config's mel bins; a waveform normalised per input for the others)."""
    from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    try:
        return AutoFeatureExtractor.from_pretrained(spec.location, **kwargs)
    except (OSError, ValueError):
        LOGGER.info("%s has no feature extractor: transformers' default for %s", spec.model_id, config.model_type)
    if config.model_type in WHISPER_TYPES:
        return WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=MODEL_RATE, padding_value=0.0, do_normalize=True,
                                    return_attention_mask=False)


def frame_ends(n_samples, settings):
    """Sample index (exclusive) of each frame's end: one frame per ``stride`` seconds that ends inside the audio."""
    step = settings.stride * MODEL_RATE
    return np.round(np.arange(1, math.floor(n_samples / step + 1e-9) + 1) * step).astype(np.int64)


def window_states(speech, samples, settings, progress=None):
    """The window mode: ``(n_layers + 1, n_frames, hidden)`` float32, one causal window per frame."""
    ends = frame_ends(len(samples), settings)
    width = int(round((settings.context + settings.stride) * MODEL_RATE))
    starts = np.maximum(ends - width, 0)
    minimum = speech.first_output_samples()
    out = None
    by_length = {}
    for index, (start, end) in enumerate(zip(starts, ends)):
        if end - start >= minimum:
            by_length.setdefault(int(end - start), []).append(index)
    for indices in by_length.values():
        for first in range(0, len(indices), settings.batch_size):
            batch = indices[first:first + settings.batch_size]
            states = speech.states([samples[starts[i]:ends[i]] for i in batch])
            if out is None:
                out = np.zeros((states.shape[0], len(ends), states.shape[2]), np.float32)
            out[:, batch] = states
            if progress is not None:
                progress(len(batch))
    if out is None:
        raise BadDataError("the audio is shorter than one speech-model frame")
    return out


def chunked_states(speech, samples, settings):
    """The chunked mode: one pass per ``chunk`` seconds of frames with ``context`` seconds before; each frame's
    state is that of the output frame ending with it."""
    ends = frame_ends(len(samples), settings)
    chunk, context = int(round(settings.chunk * MODEL_RATE)), int(round(settings.context * MODEL_RATE))
    if speech.is_whisper and settings.chunk + settings.context > WHISPER_SECONDS:
        raise UsageError(f"--speech-mode chunked: Whisper reads at most {WHISPER_SECONDS:g} s at once, and a chunk "
                         f"with its context is {settings.chunk + settings.context:g} s")
    out = None
    for chunk_start in range(0, len(samples), chunk):
        inside = np.nonzero((ends > chunk_start) & (ends <= chunk_start + chunk))[0]
        if not len(inside):
            continue
        begin = max(0, chunk_start - context)
        stop = int(ends[inside[-1]])
        states = speech.sequence_states(samples[begin:stop])
        frames = speech.frame_at(ends[inside] - begin)
        kept = frames >= 0
        if out is None:
            out = np.zeros((states.shape[0], len(ends), states.shape[2]), np.float32)
        out[:, inside[kept]] = states[:, np.minimum(frames[kept], states.shape[1] - 1)]
    return out


def speech_record(spec, audio_path, settings, dtype):
    """The cache record of a speech model's features of one audio file."""
    from bids_encoding.features.acoustic import audio_record

    return {"what": "speech", "model_id": spec.model_id, "model_revision": spec.revision, "model_source": spec.source,
            "model_label": spec.label, "untrained": spec.untrained, "dtype": dtype, "settings": settings.record(),
            "audio": audio_record(audio_path), "speech_code": SPEECH_CODE_VERSION}


def speech_features(load, spec, audio_path, settings, layers, cache, dtype):
    """Frames of every chosen layer of a speech model for one audio file, through the cache.

    Parameters
    ----------
    load : callable
        Returns the :class:`SpeechModel` (called only when something is computed).
    layers : list of int
        0 = the encoder's input (after the feature encoder), then each transformer layer.

    Returns
    -------
    frames : pandas.DataFrame
        ``onset``, ``duration`` on the audio's clock: frame ``i`` is ``[i stride, (i + 1) stride)``, its state that
        of the model at its end.
    values : dict
        ``{layer: (n_frames, hidden)}`` float32.
    """
    from bids_encoding import dependencies
    from bids_encoding.features.acoustic import frames_table

    dependencies.require(dependencies.SPEECH, f"the speech model {spec.model_id}")
    record = speech_record(spec, audio_path, settings, dtype)

    def compute(missing):
        samples = read_speech_audio(audio_path)
        speech = load()
        try:
            states = (window_states if settings.mode == "window" else chunked_states)(speech, samples, settings)
        except BadDataError as error:
            raise BadDataError(f"{audio_path}: {error} ({spec.model_id})") from error
        LOGGER.info("computed %s features of %s: %d frames of %.1f s of audio (%s mode)", spec.model_id,
                    Path(audio_path).name, states.shape[1], len(samples) / MODEL_RATE, settings.mode)
        return ({layer: states[layer] for layer in missing},
                {"n_frames": int(states.shape[1]), "frame_rate": 1 / settings.stride, "n_samples": len(samples)})

    arrays, info, computed = cache.get_or_compute(record, list(layers), compute)
    if not computed:
        LOGGER.info("reusing cached %s features of %s (%s)", spec.model_id, Path(audio_path).name,
                    cache.entry(record))
    values = {layer: np.asarray(arrays[layer]) for layer in layers}
    return frames_table(info["n_frames"], info["frame_rate"]), values
