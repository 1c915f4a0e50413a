"""Ridge: voxel-wise encoding models with nested run-wise cross-validation (torch)."""

from bids_encoding.ridge.cv import leave_one_run_out
from bids_encoding.ridge.solver import DEFAULT_ALPHAS, CVResult, NestedRidgeCV, pearson_r

__all__ = ["CVResult", "DEFAULT_ALPHAS", "NestedRidgeCV", "leave_one_run_out", "pearson_r"]
