"""Inputs: select BOLD runs and their word timings from a BIDS dataset."""

from bids_encoding._lazy import lazy_exports

EXPORTS = {
    "Run": "layout",
    "load_layout": "layout",
    "select_runs": "layout",
    "WORD_TRIAL_TYPE": "timings.events",
    "read_word_events": "timings.events",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
