"""Features of every distinct stimulus for every model, through the shared cache."""

import logging
from dataclasses import dataclass, replace

from bids_encoding.errors import UsageError
from bids_encoding.features.baselines import baseline_features
from bids_encoding.features.cache import FeatureCache
from bids_encoding.features.extract import extract_word_features
from bids_encoding.features.models import Placement, load_config, load_model, parameter_counts, resolve_dtype
from bids_encoding.features.settings import FeatureSettings, resolve_layers
from bids_encoding.features.speech import SPEECH_CODE_VERSION, SpeechSettings, is_speech_config

LOGGER = logging.getLogger(__name__)
# Bump when the features change for the same model and settings: the feature cache and reruns compute them
# again (docs/usage.md "Versions"). 3: own-token pooling, fixed encoder right context.
FEATURE_CODE_VERSION = 3


@dataclass(frozen=True)
class ModelInfo:
    """What the sidecars and tables record of a model: its size (from the config alone), the layers
    extracted and the window plan.

    Attributes
    ----------
    n_params : int
        The model as published, language-model head included (the scaling fits use it).
    n_params_no_head, n_params_non_embedding : int
        The transformer that gives the features; the same without embedding tables.
    n_layers, hidden_size : int
    max_tokens : int or None
        Usable positions (special tokens included).
    model_type, dtype : str
    layers : tuple of int
        Layers extracted (0 = embeddings).
    window, context, right_context : int or None
        The window plan of the extraction (``None`` for baselines).
    ffn_module : str or None
        The feed-forward layer whose input gives the neurons (``--ffn-neurons``).
    speech : dict or None
        A speech model's frame settings (:meth:`~bids_encoding.features.speech.SpeechSettings.record`).
    """

    n_params: int
    n_params_no_head: int
    n_params_non_embedding: int
    n_layers: int
    hidden_size: int
    max_tokens: int | None
    model_type: str
    dtype: str
    layers: tuple = ()
    window: int | None = None
    context: int | None = None
    right_context: int | None = None
    ffn_module: str | None = None
    speech: dict | None = None


class FeatureExtractor:
    """Computes or reuses features for many models and stimuli.

    Parameters
    ----------
    cache : FeatureCache
    settings : FeatureSettings
    device : str
    dtype : str or None
        ``auto``/``None``: bfloat16 on a GPU that supports it, else float32.
    trust_remote_code : bool
        Let transformers run code shipped with a hub model (only for models you trust).
    progress : bool
    ffn_neurons : bool
        Also cache the feed-forward activations of every chosen layer.
    placement : Placement
        Models across devices, offloaded or quantized (accelerate, bitsandbytes).

    Attributes
    ----------
    speech_settings : SpeechSettings
        How speech models' frames are computed (``--speech-mode``).
    """

    speech_settings = SpeechSettings()

    def __init__(self, cache, settings=FeatureSettings(), device="cpu", dtype=None, trust_remote_code=False,
                 progress=True, ffn_neurons=False, placement=Placement()):
        self.cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
        self.settings = settings
        self.device = device
        self.dtype = str(resolve_dtype(device, dtype)).replace("torch.", "")
        self.trust_remote_code = trust_remote_code
        self.progress = progress
        self.ffn_neurons = ffn_neurons
        self.placement = placement
        self._speech = {}

    def model_info(self, spec):
        """:class:`ModelInfo` of a model read from its config alone (no weights; no layers or plan yet)."""
        if spec.is_baseline:
            return ModelInfo(n_params=0, n_params_no_head=0, n_params_non_embedding=0, n_layers=0,
                             hidden_size=spec.dim, max_tokens=None, model_type="baseline", dtype="float32")
        return ModelInfo(**parameter_counts(spec, self.trust_remote_code), dtype=self.dtype)

    def is_speech(self, spec):
        """Whether ``spec`` is a speech model (:func:`~bids_encoding.features.speech.is_speech_config`), from its
        config (read once)."""
        if spec.is_baseline:
            return False
        if spec not in self._speech:
            self._speech[spec] = is_speech_config(load_config(spec, self.trust_remote_code))
        return self._speech[spec]

    def record(self, spec, fingerprint, what="hidden_states"):
        if what == "hidden_states" and self.is_speech(spec):
            return {"what": "speech", "stimulus": fingerprint, "model_id": spec.model_id,
                    "model_revision": spec.revision, "model_source": spec.source, "untrained": spec.untrained,
                    "dtype": self.dtype,
                    "speech": self.speech_settings.record(), "speech_code": SPEECH_CODE_VERSION}
        return {
            "what": what, "stimulus": fingerprint, "model_id": spec.model_id, "model_revision": spec.revision,
            "model_source": spec.source, "model_label": spec.label, "untrained": spec.untrained,
            "dtype": self.dtype, "features": self.settings.cache_record(), "feature_code": FEATURE_CODE_VERSION,
            **({"quantization": self.placement.quantize} if self.placement.quantize else {}),
        }

    def cached(self, spec, stimulus, layers):
        """Whether the cache holds ``spec``'s features of ``stimulus`` at ``layers`` (a speech model's are keyed by
        the audio's content, the others' by the words)."""
        if self.is_speech(spec):
            from bids_encoding.features.speech import speech_record

            return stimulus.audio is not None and self.cache.has(
                speech_record(spec, stimulus.audio, self.speech_settings, self.dtype), layers)
        return self.cache.has(self.record(spec, stimulus.cache_key), layers)

    def features(self, spec, stimuli):
        """Features of each stimulus for one model.

        Parameters
        ----------
        spec : ModelSpec
        stimuli : iterable of Stimulus

        Returns
        -------
        features : dict
            ``{cache_key: {layer: array (n_words, dim)}}`` (see :class:`Stimulus`).
        info : ModelInfo
            Model size, layers and the window plan (for sidecars and tables).
        """
        stimuli = {stimulus.cache_key: stimulus for stimulus in stimuli}
        if spec.is_acoustic:  # per audio frame: {cache_key: (frames, values)}
            return self.acoustic(spec, stimuli.values())
        if self.is_speech(spec):  # per audio frame: {cache_key: (frames, {layer: values})}
            return self.speech(spec, stimuli.values())
        info = self.model_info(spec)
        if spec.is_baseline:
            features = {fp: baseline_features(spec, list(s.words), int(fp[:8], 16), s.phones, s.language)
                        for fp, s in stimuli.items()}
            return features, replace(info, layers=(0,))
        layers = resolve_layers(self.settings.layers, info.n_layers)
        loaded, features = None, {}
        for fingerprint, stimulus in stimuli.items():
            def compute(missing, stimulus=stimulus, fingerprint=fingerprint):
                nonlocal loaded
                if loaded is None:
                    LOGGER.info("loading model %s (%s)", spec.model_id, spec.location)
                    loaded = load_model(spec, self.device, self.dtype, self.trust_remote_code, self.placement)
                settings = _with_layers(self.settings, missing)
                result = extract_word_features(loaded, list(stimulus.text), settings, device=self.device,
                                               progress=self.progress, context_words=stimulus.context_words,
                                               neurons=self.ffn_neurons, word_ranges=stimulus.word_ranges)
                arrays, extraction = result.hidden, result.info
                if self.ffn_neurons:
                    self.cache.save(self.record(spec, fingerprint, "ffn_neurons"), result.neurons, extraction)
                LOGGER.info("computed features of %s for stimulus %s: %d words, %d tokens, %d windows, "
                            "%.2f passes per token", spec.model_id, fingerprint, extraction["n_words"],
                            extraction["n_tokens"], extraction["n_windows"], extraction["tokens_processed_per_token"])
                return arrays, extraction

            record = self.record(spec, fingerprint)
            forced = self.ffn_neurons and self.neurons(spec, fingerprint, layers) is None
            if forced:  # neurons come from the same forward pass as the hidden states
                self.cache.save(record, *compute(layers))
            arrays, extraction, computed = self.cache.get_or_compute(record, layers, compute)
            if not (computed or forced):
                LOGGER.info("reusing cached features of %s for stimulus %s (%s)", spec.model_id, fingerprint,
                            self.cache.entry(self.record(spec, fingerprint)))
            features[fingerprint] = arrays
            info = replace(info, **{key: extraction[key] for key in ("window", "context", "right_context")})
        if self.ffn_neurons:
            info = replace(info, ffn_module=self._ffn_module(spec, stimuli))
        return features, replace(info, layers=tuple(layers))

    def acoustic(self, spec, stimuli):
        """Frames of an acoustic space (``spec.is_acoustic``) for each stimulus, from its audio, through the cache.

        Returns
        -------
        features : dict
            ``{cache_key: (frames, values)}``: ``frames`` a table of ``onset`` and ``duration`` on the audio's
            clock, ``values`` ``(n_frames, dim)`` (:func:`~bids_encoding.features.acoustic.acoustic_features`).
        info : ModelInfo
        """
        from bids_encoding.features.acoustic import acoustic_features

        features = {}
        for stimulus in {stimulus.cache_key: stimulus for stimulus in stimuli}.values():
            if stimulus.audio is None:
                raise UsageError(f"--models {spec.model_id}: a stimulus has no audio (check_feature_inputs first)")
            features[stimulus.cache_key] = acoustic_features(spec, stimulus.audio, self.cache)
        return features, replace(self.model_info(spec), layers=(0,))

    def speech(self, spec, stimuli):
        """Frames of every chosen layer of a speech model for each stimulus, from its audio, through the cache.

        Returns
        -------
        features : dict
            ``{cache_key: (frames, {layer: values})}`` (:func:`~bids_encoding.features.speech.speech_features`).
        info : ModelInfo
        """
        import torch

        from bids_encoding.features.speech import SpeechModel, speech_features

        info = self.model_info(spec)
        layers = resolve_layers(self.settings.layers, info.n_layers)
        loaded = []

        def load():
            if not loaded:
                LOGGER.info("loading speech model %s (%s)", spec.model_id, spec.location)
                loaded.append(SpeechModel.load(spec, self.device, getattr(torch, self.dtype), self.trust_remote_code))
            return loaded[0]

        features = {}
        for stimulus in {stimulus.cache_key: stimulus for stimulus in stimuli}.values():
            if stimulus.audio is None:
                raise UsageError(f"--models {spec.model_id}: a stimulus has no audio (check_feature_inputs first)")
            features[stimulus.cache_key] = speech_features(load, spec, stimulus.audio, self.speech_settings, layers,
                                                           self.cache, self.dtype)
        return features, replace(info, layers=tuple(layers), speech=self.speech_settings.record())

    def neurons(self, spec, fingerprint, layers):
        """Cached feed-forward activations ``{layer: (n_words, d_ff)}`` of one stimulus (after :meth:`features`)."""
        cached = self.cache.load(self.record(spec, fingerprint, "ffn_neurons"),
                                 [layer for layer in layers if layer > 0])
        return None if cached is None else cached[0]

    def _ffn_module(self, spec, stimuli):
        for fingerprint in stimuli:
            meta = self.cache.load(self.record(spec, fingerprint, "ffn_neurons"), [])
            if meta is not None and meta[1].get("ffn_module"):
                return meta[1]["ffn_module"]
        return None


def _with_layers(settings, layers):
    return replace(settings, layers=tuple(str(layer) for layer in layers))
