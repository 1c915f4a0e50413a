"""Design: word features brought to scan times, trimmed and cleaned as the BOLD."""

from bids_encoding._lazy import lazy_exports

EXPORTS = {
    "DesignKind": "base",
    "frame_times": "base",
    "DEFAULT_HIGH_PASS": "cleaning",
    "Cleaning": "cleaning",
    "word_response_matrix": "hrf",
    "DESIGNS": "kinds",
    "design_kind": "kinds",
    "DesignSettings": "settings",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
