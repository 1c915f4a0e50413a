"""Synthetic BIDS datasets with a planted brain response (the demo and the tests)."""

from bids_encoding.synthetic.generator import GroundTruth, generate_dataset, story_runs

__all__ = ["GroundTruth", "generate_dataset", "story_runs"]
