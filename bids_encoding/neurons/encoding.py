"""The patterns as fixed regressors: a voxel-wise encoding model whose design is the K pattern time courses,
with the same nested cross-validated ridge as the main fit (prediction accuracy), then one weight map per
pattern from a refit on every scan at each voxel's chosen alpha."""

from dataclasses import dataclass

import numpy as np


@dataclass
class PatternFit:
    """``weights``: ``(n_patterns, n_voxels)``; ``r``: held-out r per voxel (mean over outer folds);
    ``alpha``: each voxel's alpha (geometric mean over folds); ``result``: the CV result."""

    weights: np.ndarray
    r: np.ndarray
    alpha: np.ndarray
    result: object


def fit_patterns(ridge, designs, responses, keys):
    """Nested CV with ``ridge`` (a :class:`NestedRidgeCV`) on the pattern designs (one per run), then the
    weight maps (:class:`PatternFit`)."""
    result = ridge.fit_score(designs, responses, keys)
    alpha = np.exp(np.log(result.alpha).mean(axis=0))
    weights = ridge.weights(designs, responses, alpha)
    return PatternFit(weights=weights.astype(np.float32), r=result.test_r.mean(axis=0), alpha=alpha, result=result)
