"""Features: language-model hidden states (or baselines) for every word of every run."""

from bids_encoding.features.baselines import baseline_features
from bids_encoding.features.cache import FeatureCache, stimulus_fingerprint
from bids_encoding.features.extract import FeatureSettings, WordFeatures, extract_word_features, resolve_layers
from bids_encoding.features.models import (
    LoadedModel,
    ModelSpec,
    load_model,
    parameter_counts,
    parse_model_spec,
)

__all__ = [
    "FeatureCache",
    "FeatureSettings",
    "LoadedModel",
    "ModelSpec",
    "baseline_features",
    "WordFeatures",
    "extract_word_features",
    "load_model",
    "parameter_counts",
    "parse_model_spec",
    "resolve_layers",
    "stimulus_fingerprint",
]
