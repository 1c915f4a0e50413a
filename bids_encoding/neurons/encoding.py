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


def ridge_weights(design, response, alphas):
    """Ridge weights ``(n_features, n_voxels)`` with one alpha per voxel, through the eigendecomposition of
    ``XᵀX`` (float64: K is small). ``design`` and ``response`` may be lists of runs: their products are summed
    run by run, so the responses are never copied whole."""
    designs = design if isinstance(design, list) else [design]
    responses = response if isinstance(response, list) else [response]
    gram = sum(np.asarray(x, dtype=np.float64).T @ np.asarray(x, dtype=np.float64) for x in designs)
    cross = sum(np.asarray(x, dtype=np.float64).T @ y for x, y in zip(designs, responses))
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    rotated = eigenvectors.T @ cross
    return eigenvectors @ (rotated / (eigenvalues[:, None] + np.asarray(alphas, dtype=np.float64)[None, :]))


def fit_patterns(ridge, designs, responses, keys):
    """Nested CV with ``ridge`` (a :class:`NestedRidgeCV`) on the pattern designs (one per run), then the
    weight maps (:class:`PatternFit`)."""
    result = ridge.fit_score(designs, responses, keys)
    alpha = np.exp(np.log(result.alpha).mean(axis=0))
    weights = ridge_weights(np.concatenate(designs), np.concatenate(responses), alpha)
    return PatternFit(weights=weights.astype(np.float32), r=result.test_r.mean(axis=0), alpha=alpha, result=result)
