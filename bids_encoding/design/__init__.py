"""Design: word features brought to scan times, trimmed and cleaned as the BOLD."""

from bids_encoding.design.base import DesignKind, frame_times
from bids_encoding.design.cleaning import DEFAULT_HIGH_PASS, Cleaning
from bids_encoding.design.hrf import word_response_matrix
from bids_encoding.design.kinds import DESIGNS, design_kind
from bids_encoding.design.settings import DesignSettings

__all__ = ["DEFAULT_HIGH_PASS", "DESIGNS", "Cleaning", "DesignKind", "DesignSettings", "design_kind", "frame_times",
           "word_response_matrix"]
