"""Random-effects combination of datasets: DerSimonian-Laird with the Knapp-Hartung correction.

Pure functions on arrays whose first axis is the dataset (any further axes are voxels, regions or models), so
one call combines a whole map. NiMARE's image-based estimators were the first choice; NiMARE 0.22 pins
``nilearn<0.14`` while this app needs the current nilearn, and PyMARE (which NiMARE uses) has DerSimonian-Laird
without Knapp-Hartung. These 60 lines give the same estimate and τ² as PyMARE's ``DerSimonianLaird``
(tests/test_across_datasets.py compares them).

With few datasets (three reference datasets) τ² is estimated from 2 degrees of freedom and is unstable; the
Knapp-Hartung interval does not take τ² as known: it rescales the variance of the combined estimate by the
weighted spread of the datasets around it and uses a t distribution with K − 1 degrees of freedom, which keeps
the interval's coverage near nominal where the plain z interval is far too narrow (IntHout et al. 2014).
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Combined:
    """The random-effects combination of ``K`` datasets (each field: the shape of one dataset's estimates).

    Attributes
    ----------
    estimate : numpy.ndarray
        The combined estimate μ.
    se : numpy.ndarray
        Its Knapp-Hartung standard error.
    ci_low, ci_high : numpy.ndarray
        Its confidence interval (t with K − 1 degrees of freedom).
    t, p : numpy.ndarray
        The test of μ = 0 (two-sided).
    tau2 : numpy.ndarray
        Between-dataset variance (DerSimonian-Laird).
    i2 : numpy.ndarray
        Share of the spread due to heterogeneity, (Q − (K − 1)) / Q, floored at 0.
    q, q_p : numpy.ndarray
        Cochran's Q and its p-value (χ² with K − 1 degrees of freedom): do the datasets differ?
    residuals : numpy.ndarray
        ``(K, ...)``: each dataset's externally standardized residual (Viechtbauer & Cheung 2010): its departure
        from the combination of the other datasets, (y − μ₋ₖ) / √(v + τ²₋ₖ + SE²₋ₖ); NaN with fewer than 3
        datasets. A dataset unlike the others is not hidden by the τ² it inflates itself.
    n_datasets : int
    """

    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    t: np.ndarray
    p: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    q: np.ndarray
    q_p: np.ndarray
    residuals: np.ndarray
    n_datasets: int


def combine(estimates, variances, confidence=0.95):
    """DerSimonian-Laird random-effects combination with the Knapp-Hartung interval.

    Parameters
    ----------
    estimates : array, shape (K, ...)
        Each dataset's estimate (e.g. the mean over its participants of Fisher-z r).
    variances : array, shape (K, ...)
        Their sampling variances (e.g. the participants' variance / their number); positive.
    confidence : float

    Returns
    -------
    Combined
    """
    y, v = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    k = y.shape[0]
    if k < 2:
        raise ValueError("a random-effects combination needs at least 2 datasets")
    w = 1.0 / v
    q = (w * (y - (w * y).sum(0) / w.sum(0)) ** 2).sum(0)
    estimate, tau2, _ = _dersimonian_laird(y, v)
    w_star = 1.0 / (v + tau2)
    se = np.sqrt((w_star * (y - estimate) ** 2).sum(0) / ((k - 1) * w_star.sum(0)))
    half = stats.t.ppf((1 + confidence) / 2, k - 1) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        t = estimate / se
        i2 = np.where(q > 0, np.maximum(0.0, (q - (k - 1)) / q), 0.0)
    return Combined(estimate, se, estimate - half, estimate + half, t, 2 * stats.t.sf(np.abs(t), k - 1), tau2, i2,
                    q, stats.chi2.sf(q, k - 1), _left_out_residuals(y, v), k)


def _dersimonian_laird(y, v):
    """``(μ, τ², 1 / Σw*)``: the DerSimonian-Laird estimate, τ² and the estimate's (plain) variance."""
    w = 1.0 / v
    fixed = (w * y).sum(0) / w.sum(0)
    q = (w * (y - fixed) ** 2).sum(0)
    tau2 = np.maximum(0.0, (q - (y.shape[0] - 1)) / (w.sum(0) - (w ** 2).sum(0) / w.sum(0)))
    w_star = 1.0 / (v + tau2)
    return (w_star * y).sum(0) / w_star.sum(0), tau2, 1.0 / w_star.sum(0)


def _left_out_residuals(y, v):
    k = y.shape[0]
    if k < 3:
        return np.full(y.shape, np.nan)
    residuals = []
    for left_out in range(k):
        others = [i for i in range(k) if i != left_out]
        estimate, tau2, variance = _dersimonian_laird(y[others], v[others])
        residuals.append((y[left_out] - estimate) / np.sqrt(v[left_out] + tau2 + variance))
    return np.stack(residuals)


def mean_and_variance(values):
    """Each dataset's estimate and sampling variance from its participants' values (axis 0): the mean and the
    variance of the mean (sample variance / n, n ≥ 2)."""
    values = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(values, axis=0), np.nanvar(values, axis=0, ddof=1) / n
