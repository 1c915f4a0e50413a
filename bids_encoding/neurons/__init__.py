"""Neurons to brain networks (Sun et al. 2024): feed-forward neurons' time courses, their representative
temporal patterns, and which neurons follow which pattern."""

from bids_encoding.neurons.patterns import PATTERN_METHODS, NeuronPatterns, assignment
from bids_encoding.neurons.timecourses import NeuronTimecourses, one_delay

__all__ = ["PATTERN_METHODS", "NeuronPatterns", "NeuronTimecourses", "assignment", "one_delay"]
