"""Design: word features brought to scan times."""

from bids_encoding.design.hrf import DesignSettings, frame_times, hrf_design, word_response_matrix

__all__ = ["DesignSettings", "frame_times", "hrf_design", "word_response_matrix"]
