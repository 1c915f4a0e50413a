"""Ridge regression in SVD form, one alpha per voxel, nested leave-one-run-out.

For a split with training design ``X = U S Vᵀ``, ``R = Uᵀ Y`` is computed
once; predictions for every alpha are ``P diag(s / (s² + α)) R`` with
``P = X_val V``, so each alpha costs one small product instead of a new
solve. The same torch code runs on CPU and CUDA.
"""

from dataclasses import dataclass

import numpy as np
import torch

from bids_encoding.ridge.cv import leave_one_run_out

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(0, 8, 17))


def pearson_r(prediction, target):
    """Pearson r of matching columns; 0 where either column is constant.

    Parameters
    ----------
    prediction, target : torch.Tensor ``(n_samples, n_voxels)``, or with a
        leading batch dimension for ``prediction``.
    """
    prediction = prediction - prediction.mean(dim=-2, keepdim=True)
    target = target - target.mean(dim=-2, keepdim=True)
    numerator = (prediction * target).sum(dim=-2)
    denominator = torch.sqrt((prediction ** 2).sum(dim=-2) * (target ** 2).sum(dim=-2))
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-30), torch.zeros_like(numerator))


class _Split:
    """Everything of one train/predict split that depends on X alone."""

    def __init__(self, x_train, x_predict):
        u, s, vt = torch.linalg.svd(x_train, full_matrices=False)
        self.ut = u.T
        self.s = s
        self.projected = x_predict @ vt.T  # P = X_predict V

    def shrinkage(self, alphas):
        return self.s[None, :] / (self.s[None, :] ** 2 + alphas[:, None])  # (A, k)

    def predictions(self, y_train, alphas):
        """Predictions for every alpha: ``(A, n_predict, n_voxels)``."""
        r = self.ut @ y_train
        return torch.einsum("nk,ak,kv->anv", self.projected, self.shrinkage(alphas), r)

    def predict_with(self, y_train, alpha_per_voxel):
        """Predictions with one alpha per voxel, grouped by alpha value."""
        r = self.ut @ y_train
        prediction = torch.empty((self.projected.shape[0], y_train.shape[1]),
                                 dtype=y_train.dtype, device=y_train.device)
        for alpha in torch.unique(alpha_per_voxel):
            voxels = alpha_per_voxel == alpha
            shrink = self.s / (self.s ** 2 + alpha)
            prediction[:, voxels] = (self.projected * shrink) @ r[:, voxels]
        return prediction


@dataclass
class CVResult:
    """Outcome of nested cross-validation for one design.

    Attributes
    ----------
    test_r : numpy.ndarray ``(n_folds, n_voxels)``
        Pearson r on each held-out run.
    validation_r : numpy.ndarray ``(n_folds, n_voxels)``
        Best inner-validation r (mean over inner folds) in each outer fold;
        used to choose layers without looking at the test run.
    alpha : numpy.ndarray ``(n_folds, n_voxels)``
        Alpha chosen in each outer fold.
    """

    test_r: np.ndarray
    validation_r: np.ndarray
    alpha: np.ndarray

    @property
    def mean_r(self):
        return self.test_r.mean(axis=0)


class NestedRidgeCV:
    """Voxel-wise ridge: leave one run out outside, leave one run out inside.

    Parameters
    ----------
    alphas : sequence of float
    device : str
        ``cpu`` or ``cuda``.
    voxel_chunk : int
        Voxels fitted at once (bounds memory).
    dtype : torch.dtype
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, device="cpu", voxel_chunk=20000, dtype=torch.float32):
        self.alphas = tuple(float(a) for a in alphas)
        self.device = device
        self.voxel_chunk = int(voxel_chunk)
        self.dtype = dtype

    def _tensor(self, array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.dtype, device=self.device)

    def fit_score(self, designs, responses, progress=None):
        """Nested cross-validation over runs.

        Parameters
        ----------
        designs : list of array ``(n_scans_run, n_features)``
            One per run, z-scored.
        responses : list of array ``(n_scans_run, n_voxels)``
            One per run, z-scored.
        progress : callable or None
            Called once per outer fold.

        Returns
        -------
        CVResult
        """
        if len(designs) != len(responses) or len(designs) < 3:
            raise ValueError("nested leave-one-run-out needs at least 3 runs")
        alphas = torch.tensor(self.alphas, dtype=self.dtype, device=self.device)
        x_runs = [self._tensor(x) for x in designs]
        y_runs = [self._tensor(y) for y in responses]
        n_voxels = y_runs[0].shape[1]
        n_folds = len(x_runs)
        test_r = np.zeros((n_folds, n_voxels), dtype=np.float32)
        validation_r = np.zeros_like(test_r)
        chosen_alpha = np.zeros_like(test_r)

        for fold, (train, test) in enumerate(leave_one_run_out(range(n_folds))):
            inner = [
                (_Split(torch.cat([x_runs[i] for i in inner_train]), x_runs[val]), inner_train, val)
                for inner_train, val in leave_one_run_out(train)
            ]
            outer = _Split(torch.cat([x_runs[i] for i in train]), x_runs[test])
            for start in range(0, n_voxels, self.voxel_chunk):
                voxels = slice(start, min(start + self.voxel_chunk, n_voxels))
                scores = torch.zeros((len(self.alphas), voxels.stop - voxels.start),
                                     dtype=self.dtype, device=self.device)
                for split, inner_train, val in inner:
                    y_train = torch.cat([y_runs[i][:, voxels] for i in inner_train])
                    scores += pearson_r(split.predictions(y_train, alphas), y_runs[val][:, voxels])
                scores /= len(inner)
                best_score, best = scores.max(dim=0)
                alpha_per_voxel = alphas[best]
                y_train = torch.cat([y_runs[i][:, voxels] for i in train])
                prediction = outer.predict_with(y_train, alpha_per_voxel)
                test_r[fold, voxels] = pearson_r(prediction, y_runs[test][:, voxels]).cpu().numpy()
                validation_r[fold, voxels] = best_score.cpu().numpy()
                chosen_alpha[fold, voxels] = alpha_per_voxel.cpu().numpy()
            if progress is not None:
                progress()
        return CVResult(test_r=test_r, validation_r=validation_r, alpha=chosen_alpha)
