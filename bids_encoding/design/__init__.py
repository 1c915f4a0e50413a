"""Design: word features brought to scan times, trimmed and cleaned as the BOLD."""

from bids_encoding.design.cleaning import DEFAULT_HIGH_PASS, Cleaning
from bids_encoding.design.hrf import DesignSettings, frame_times, word_response_matrix

__all__ = ["DEFAULT_HIGH_PASS", "Cleaning", "DesignSettings", "frame_times", "word_response_matrix"]
