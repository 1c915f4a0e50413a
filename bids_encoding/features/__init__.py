"""Features: language-model hidden states for every word of every run."""

from bids_encoding.features.cache import FeatureCache, stimulus_fingerprint
from bids_encoding.features.extract import FeatureSettings, extract_word_features
from bids_encoding.features.models import LoadedModel, ModelSpec, load_model, parse_model_spec

__all__ = [
    "FeatureCache",
    "FeatureSettings",
    "LoadedModel",
    "ModelSpec",
    "extract_word_features",
    "load_model",
    "parse_model_spec",
    "stimulus_fingerprint",
]
