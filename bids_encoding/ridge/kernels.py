"""The ridge's kernels in the primal form: for a training set with Gram matrix ``XᵀX = V diag(λ) Vᵀ`` (float64
``eigh``) and ``C = XᵀY``, the weights for alpha ``α`` are ``V diag(1 / (λ + α)) Vᵀ C``. Validation predictions
for every alpha at once are one product ``[P / (λ + α)]_α · (Vᵀ C)`` with ``P = X_val V`` fixed per split, so
each extra alpha costs ``2 n_val p`` per voxel, where himalaya forms new weights per alpha (``2 p² + 2 n_val
p``). Also the validation scores, and the solver registry (``SOLVERS``) the cross-validation loops use.
"""

import numpy as np
import torch


class _Eigen:
    """Eigendecomposition of a training Gram matrix and its projection of the rows to predict."""

    def __init__(self, gram, x_predict, dtype):
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        self.eigenvalues = eigenvalues.clamp_min(0).to(dtype)
        self.eigenvectors = eigenvectors.to(dtype)
        self.projected = x_predict @ self.eigenvectors  # P = X_predict V

    def predict(self, cross, alphas_per_voxel):
        """``P diag(1 / (λ + α_v)) Vᵀ C`` for one alpha per column of ``C = XᵀY``."""
        return self.projected @ ((self.eigenvectors.T @ cross)
                                 / (self.eigenvalues[:, None] + alphas_per_voxel[None, :]))


class _ValidationScorer:
    """Validation score of every alpha for one inner split, from the split's training ``XᵀY``.

    ``M_α = P diag(1/(λ + α)) Vᵀ`` is formed once per split, so the
    predictions of all alphas are one product ``[M_α]_α · XᵀY`` per block of
    voxels and no per-block rotation into the eigenbasis is needed.
    """

    def __init__(self, split, alphas, score="r"):
        inverse = 1.0 / (split.eigenvalues[None, :] + alphas[:, None])  # (A, p)
        n_alphas, (n_rows, n_features) = len(alphas), split.projected.shape
        shrunk = split.projected[None] * inverse[:, None, :]  # (A, n_val, p)
        self.operator = (shrunk.reshape(n_alphas * n_rows, n_features) @ split.eigenvectors.T)
        self.operator_mean = self.operator.reshape(n_alphas, n_rows, n_features).mean(dim=1)  # (A, p)
        self.n_alphas = n_alphas
        self.score = score

    def scores(self, cross, y_val):
        """Pearson r or R² ``(n_alphas, n_voxels)`` of the validation predictions."""
        n_rows = y_val.shape[0]
        prediction = (self.operator @ cross).reshape(self.n_alphas, n_rows, -1)
        y_centered = y_val - y_val.mean(dim=0, keepdim=True)
        total = (y_centered.double() ** 2).sum(dim=0)
        if self.score in SCORES_OF_PREDICTIONS:
            return SCORES_OF_PREDICTIONS[self.score](prediction, y_val, total).to(cross.dtype)
        # centring through operator_mean, fused with the prediction, for speed
        prediction -= (self.operator_mean @ cross)[:, None, :]
        return r_centered(prediction, y_centered, total).to(cross.dtype)


def r_centered(prediction, y_centered, total):
    """Pearson r (float64) of centred predictions ``(..., n_rows, n_voxels)`` with centred targets whose sums
    of squares are ``total``; the same value as ridge.scoring.pearson_r."""
    numerator = (prediction * y_centered).sum(dim=-2).double()
    denominator = torch.sqrt(torch.linalg.vector_norm(prediction, dim=-2).double() ** 2 * total)
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), torch.zeros_like(numerator))


def _r2(prediction, y_val, total):
    """R² (float64) of predictions ``(..., n_rows, n_voxels)``; 0 where the target is constant."""
    residual = torch.linalg.vector_norm(prediction - y_val, dim=-2).double() ** 2
    return torch.where(total > 0, 1 - residual / total.clamp_min(1e-300), torch.zeros_like(residual))


def _huth_r2(prediction, y_val, total):
    """``ridge_corr``'s score with ``use_corr=False`` (Antonello et al.; ridge_utils/ridge.py:250-279):
    ``R = 1 - var(y - ŷ) / ((1 + var(y)) / 2)`` (population variances; the denominator as their code writes
    it), then ``sign(R) sqrt(|R|)``, float64."""
    n_rows = y_val.shape[-2]
    residual = (y_val - prediction).double()
    residual_var = ((residual - residual.mean(dim=-2, keepdim=True)) ** 2).mean(dim=-2)
    explained = 1 - residual_var / ((1 + total / n_rows) / 2)
    return torch.sign(explained) * torch.sqrt(explained.abs())


# the validation scores computed from the uncentred predictions (Pearson r has its own, fused centring)
SCORES_OF_PREDICTIONS = {"r2": _r2, "huth-r2": _huth_r2}




class EigenRidge:
    """Ridge with a grid of alphas, solved through the eigendecomposition of ``XᵀX`` (the default solver).

    The solver interface that :class:`NestedRidgeCV` uses, and that another
    solver (a banded ridge, with one alpha per feature band) implements:

    - ``candidates``: the hyperparameter candidates, one row each;
    - ``scorer(gram, x_val)``: an object whose ``scores(cross, y_val)`` gives
      the validation score ``(n_candidates, n_voxels)`` of every candidate
      from the split's training ``XᵀY``;
    - ``predictor(gram, x_predict)``: an object whose ``predict(cross,
      candidate_per_voxel)`` gives the predictions of the refit model;
    - ``record()``: what the sidecars say about it.
    """

    def __init__(self, alphas, score="r", dtype=torch.float32, device="cpu"):
        self.alphas = torch.tensor(sorted(float(a) for a in alphas), dtype=dtype, device=device)
        self.score = score
        self.dtype = dtype

    @property
    def candidates(self):
        return self.alphas

    def scorer(self, gram, x_val):
        return _ValidationScorer(_Eigen(gram, x_val, self.dtype), self.alphas, self.score)

    def predictor(self, gram, x_predict):
        return _EigenPredictor(_Eigen(gram, x_predict, self.dtype), self.alphas)

    def record(self):
        return {"Solver": "eigendecomposition of XᵀX (torch)", "Alphas": [float(a) for a in self.alphas]}


class _EigenPredictor:
    def __init__(self, eigen, alphas):
        self.eigen, self.alphas = eigen, alphas

    def predict(self, cross, choice):
        return self.eigen.predict(cross, self.alphas[choice])


SOLVERS = {"ridge": EigenRidge}


def ridge_weights(design, response, alphas):
    """Ridge weights ``(n_features, n_voxels)`` with one alpha per voxel, through the eigendecomposition of
    ``XᵀX`` (float64, numpy: for few features). ``design`` and ``response`` may be lists of runs: their products
    are summed run by run, so the responses are never copied whole."""
    designs = design if isinstance(design, list) else [design]
    responses = response if isinstance(response, list) else [response]
    gram = sum(np.asarray(x, dtype=np.float64).T @ np.asarray(x, dtype=np.float64) for x in designs)
    cross = sum(np.asarray(x, dtype=np.float64).T @ y for x, y in zip(designs, responses))
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    rotated = eigenvectors.T @ cross
    return eigenvectors @ (rotated / (eigenvalues[:, None] + np.asarray(alphas, dtype=np.float64)[None, :]))
