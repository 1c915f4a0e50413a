"""Scores, one definition each: Pearson r and R² of matching columns (torch, for the solver; numpy, for the
rest), their split by feature space for the banded ridge (himalaya's definitions), and z-scoring.

The solver's validation scorer fuses its own r and R² into the all-alphas product for speed
(ridge/kernels.py ``_ValidationScorer``), and the circular-shift null computes r of every lag through
an FFT (ridge/significance.py); both are checked against these definitions by the tests.
"""

import numpy as np
import torch


def pearson_r(prediction, target):
    """Pearson r of matching columns along the second-to-last axis; 0 where a column is constant.

    Sums accumulate in float64: near-ties between alphas are decided by the
    data, not by float32 rounding.
    """
    def centered(values):
        mean = values.sum(dim=-2, keepdim=True, dtype=torch.float64) / values.shape[-2]
        return values - mean.to(values.dtype)

    prediction, target = centered(prediction), centered(target)
    numerator = (prediction * target).sum(dim=-2, dtype=torch.float64)
    denominator = torch.sqrt((prediction * prediction).sum(dim=-2, dtype=torch.float64)
                             * (target * target).sum(dim=-2, dtype=torch.float64))
    r = torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), torch.zeros_like(numerator))
    return r.to(prediction.dtype)


def r2_score(prediction, target):
    """Coefficient of determination of matching columns; 0 where the target is constant."""
    residual = ((target - prediction) ** 2).sum(dim=0)
    total = ((target - target.mean(dim=0, keepdim=True)) ** 2).sum(dim=0)
    return torch.where(total > 0, 1 - residual / total.clamp_min(1e-30), torch.zeros_like(total))


def correlation_split(target, predictions):
    """Each feature space's share of the Pearson r of the joint prediction (himalaya's
    ``correlation_score_split``): with ``ŷ = Σ_i ŷ_i`` and ``c`` the centring over scans,
    ``r_i = mean(c(y) c(ŷ_i)) / (std(y) std(ŷ))`` (population standard deviations; 1 where one is 0), so
    ``Σ_i r_i = r(y, ŷ)``.

    Parameters
    ----------
    target : tensor ``(n_scans, n_voxels)``
    predictions : tensor ``(n_spaces, n_scans, n_voxels)``

    Returns
    -------
    tensor ``(n_spaces, n_voxels)``, float64
    """
    target = target.double() - target.double().mean(dim=0, keepdim=True)
    predictions = predictions.double() - predictions.double().mean(dim=1, keepdim=True)
    target_std = target.std(dim=0, correction=0)
    joint_std = predictions.sum(dim=0).std(dim=0, correction=0)
    target_std = torch.where(target_std == 0, torch.ones_like(target_std), target_std)
    joint_std = torch.where(joint_std == 0, torch.ones_like(joint_std), joint_std)
    return (target[None] * predictions).mean(dim=1) / (target_std * joint_std)


def r2_split(target, predictions):
    """Each feature space's share of the R² of the joint prediction (himalaya's ``r2_score_split``, the product
    measure, correlations between the spaces' predictions included): ``R²_i = Σ_t (2 y ŷ_i - ŷ_i ŷ) / Σ_t y²``
    with ``ŷ = Σ_j ŷ_j``, so ``Σ_i R²_i = 1 - Σ (y - ŷ)² / Σ y²``, the R² of the joint prediction for a target of
    mean zero (as himalaya, the target is assumed centred: the sums of squares are about 0); 0 where the target is
    0.

    Parameters
    ----------
    target : tensor ``(n_scans, n_voxels)``
    predictions : tensor ``(n_spaces, n_scans, n_voxels)``

    Returns
    -------
    tensor ``(n_spaces, n_voxels)``, float64
    """
    target, predictions = target.double(), predictions.double()
    total = (target ** 2).sum(dim=0)
    joint = predictions.sum(dim=0)
    shares = (2 * target[None] * predictions - predictions * joint[None]).sum(dim=1)
    return torch.where(total > 0, shares / total.clamp_min(1e-300), torch.zeros_like(shares))


def correlation(a, b):
    """Pearson r of each column of ``a`` with the same column of ``b`` (numpy; 0 where one is constant)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denominator = np.sqrt((a ** 2).sum(axis=0) * (b ** 2).sum(axis=0))
    return np.where(denominator > 0, (a * b).sum(axis=0) / np.where(denominator > 0, denominator, 1), 0.0)


def zscore(data, axis=0):
    """Z-score columns; constant columns become 0."""
    data = np.asarray(data, dtype=np.float64)
    std = data.std(axis=axis, keepdims=True)
    return (data - data.mean(axis=axis, keepdims=True)) / np.where(std > 0, std, 1.0)
