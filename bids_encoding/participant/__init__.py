"""Participant level: inputs -> features -> design -> ridge -> outputs.

- :mod:`.selection`: every participant's runs, complete and checked, before any heavy work;
- :mod:`.record`: :class:`FitRecord`, the one description of a participant × model fit (sidecar, rerun
  fingerprint, methods text);
- :mod:`.reuse`: which fits a rerun still needs (the records' fingerprints against the committed results);
- :mod:`.preparation`: masks, cleaned BOLD, the average participant, noise ceilings;
- :mod:`.batch`: participants who heard the same stimuli, fitted together;
- :mod:`.outputs`: the maps and score rows of each layer;
- :mod:`.run`: the level, run.
"""

from bids_encoding._lazy import lazy_exports

EXPORTS = {
    "AVERAGE_LABEL": "preparation",
    "Batch": "batch",
    "FitRecord": "record",
    "boilerplate_only": "run",
    "build_ridge": "batch",
    "collect_runs": "selection",
    "distinct_stimuli": "selection",
    "extract_features": "run",
    "feature_extractor": "selection",
    "model_specs": "selection",
    "prepare_participant": "preparation",
    "run_participant_level": "run",
    "stimulus_sequences": "selection",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
