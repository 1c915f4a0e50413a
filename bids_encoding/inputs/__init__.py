"""Inputs: select BOLD runs and their word timings from a BIDS dataset."""

from bids_encoding.inputs.layout import Run, load_layout, select_runs
from bids_encoding.inputs.timings.events import WORD_TRIAL_TYPE, read_word_events

__all__ = ["Run", "WORD_TRIAL_TYPE", "load_layout", "read_word_events", "select_runs"]
