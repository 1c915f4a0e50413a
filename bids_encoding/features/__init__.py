"""Features: language-model hidden states (or baselines) for every word of every run."""

from bids_encoding._lazy import lazy_exports

EXPORTS = {
    "baseline_features": "baselines",
    "FeatureCache": "cache",
    "stimulus_fingerprint": "cache",
    "FeatureSettings": "settings",
    "resolve_layers": "settings",
    "WordFeatures": "extract",
    "extract_word_features": "extract",
    "LoadedModel": "models",
    "ModelSpec": "models",
    "load_model": "models",
    "parameter_counts": "models",
    "parse_model_spec": "models",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
