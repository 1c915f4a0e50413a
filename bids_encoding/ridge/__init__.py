"""Ridge: voxel-wise encoding models with nested run-wise cross-validation (torch)."""

from bids_encoding.ridge.cv import InnerCV, leave_one_run_out, stimulus_groups
from bids_encoding.ridge.solver import DEFAULT_ALPHAS, CVResult, NestedRidgeCV, pearson_r

__all__ = ["CVResult", "DEFAULT_ALPHAS", "InnerCV", "NestedRidgeCV", "leave_one_run_out", "pearson_r", "stimulus_groups"]
