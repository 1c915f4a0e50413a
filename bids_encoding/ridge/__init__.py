"""Ridge: voxel-wise encoding models with nested run-wise cross-validation (torch)."""

from bids_encoding.ridge.cv import InnerCV
from bids_encoding.ridge.scoring import pearson_r
from bids_encoding.ridge.solver import DEFAULT_ALPHAS, CVResult, NestedRidgeCV

__all__ = ["CVResult", "DEFAULT_ALPHAS", "InnerCV", "NestedRidgeCV", "pearson_r"]
