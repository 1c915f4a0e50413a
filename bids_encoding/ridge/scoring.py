"""Scores, one definition each: Pearson r and R² of matching columns (torch, for the solver; numpy, for the
rest), and z-scoring.

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
