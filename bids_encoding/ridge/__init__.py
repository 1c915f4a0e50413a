"""Ridge: voxel-wise encoding models with nested run-wise cross-validation (torch)."""

from bids_encoding._lazy import lazy_exports

EXPORTS = {
    "DEFAULT_ALPHAS": "cv",
    "InnerCV": "cv",
    "pearson_r": "scoring",
    "BandedResult": "result",
    "BandedRidgeCV": "banded",
    "CVResult": "result",
    "NestedRidgeCV": "solver",
    "StackedResult": "result",
    "StackedRidgeCV": "stacking",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
