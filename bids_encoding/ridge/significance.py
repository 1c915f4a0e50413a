"""Per-voxel permutation p-values that respect autocorrelation, and FDR correction.

The statistic is the cross-validated score itself: Pearson r between the
held-out predictions and the data, averaged over outer folds. Its null
distribution comes from breaking the alignment of predictions and data
while keeping each time series' autocorrelation:

- ``circular``: each fold's predictions are circularly shifted by a random
  lag (at least ``min_shift`` scans from zero). Centered norms do not change
  under circular shifts, so the r of every lag comes from one FFT
  cross-correlation per fold;
- ``blocks``: each fold's predictions are cut into blocks of ``block_length``
  scans that are shuffled.

p = (1 + #{null >= observed}) / (1 + n_permutations), one-sided. Where fewer
than ``TAIL_EXCEEDANCES`` null values exceed the observed one, the empirical p
cannot go below ``1 / (1 + n_permutations)``, too coarse for FDR over tens of
thousands of voxels; there p comes from a normal tail fitted to the voxel's
null distribution (its mean and standard deviation), which keeps the
autocorrelation the permutations captured (cf. Winkler et al. 2016 on tail
approximations).
"""

import numpy as np
from scipy.stats import norm

TAIL_EXCEEDANCES = 10

PERMUTATION_SCHEMES = ("circular", "blocks")


def _centered_unit(values):
    values = values - values.mean(axis=0, keepdims=True)
    norm = np.sqrt((values ** 2).sum(axis=0, keepdims=True))
    return values / np.where(norm > 0, norm, 1.0)


def circular_shift_r(prediction, target):
    """Pearson r of ``roll(prediction, lag)`` with ``target`` for every lag: ``(n_scans, n_voxels)``."""
    n = len(prediction)
    a, b = _centered_unit(prediction.astype(np.float64)), _centered_unit(target.astype(np.float64))
    spectrum = np.fft.rfft(b, axis=0) * np.conj(np.fft.rfft(a, axis=0))
    # result[lag] = sum_t a[t] b[t + lag] = r of roll(a, lag) with b
    return np.fft.irfft(spectrum, n=n, axis=0)


def permutation_pvalues(predictions, targets, n_permutations=1000, scheme="circular", min_shift=None,
                        block_length=20, seed=0):
    """One-sided p-values of the fold-averaged r for every voxel.

    Parameters
    ----------
    predictions, targets : list of array ``(n_test_scans, n_voxels)``
        Held-out predictions and data of each outer fold.
    n_permutations : int
    scheme : str
        ``circular`` or ``blocks``.
    min_shift : int or None
        Smallest circular lag (default: 10% of the run, at least 5 scans).
    block_length : int
        Scans per block for ``blocks``.
    seed : int

    Returns
    -------
    numpy.ndarray ``(n_voxels,)``
    """
    if scheme not in PERMUTATION_SCHEMES:
        raise ValueError(f"permutation scheme must be one of {PERMUTATION_SCHEMES}")
    rng = np.random.default_rng(seed)
    observed = np.zeros(predictions[0].shape[1])
    null = np.zeros((n_permutations, predictions[0].shape[1]))
    for prediction, target in zip(predictions, targets):
        n = len(prediction)
        if scheme == "circular":
            by_lag = circular_shift_r(prediction, target)
            observed += by_lag[0]
            shift = max(5, n // 10) if min_shift is None else min_shift
            lags = rng.integers(shift, n - shift + 1, size=n_permutations) if n > 2 * shift else \
                rng.integers(1, n, size=n_permutations)
            null += by_lag[lags]
        else:
            a, b = _centered_unit(prediction.astype(np.float64)), _centered_unit(target.astype(np.float64))
            observed += (a * b).sum(axis=0)
            blocks = np.array_split(np.arange(n), max(2, int(np.ceil(n / block_length))))
            for k in range(n_permutations):
                order = np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])
                null[k] += (a[order] * b).sum(axis=0)
    observed /= len(predictions)
    null /= len(predictions)
    exceed = (null >= observed[None, :] - 1e-12).sum(axis=0)
    empirical = (1.0 + exceed) / (1.0 + n_permutations)
    spread = null.std(axis=0)
    tail = norm.sf((observed - null.mean(axis=0)) / np.where(spread > 0, spread, np.inf))
    return np.where(exceed < TAIL_EXCEEDANCES, np.minimum(tail, empirical), empirical)


def fdr_qvalues(pvalues):
    """Benjamini-Hochberg q-values (a voxel is significant at level q when its q-value <= q)."""
    pvalues = np.asarray(pvalues, dtype=float)
    order = np.argsort(pvalues)
    ranked = pvalues[order] * len(pvalues) / np.arange(1, len(pvalues) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty_like(q)
    result[order] = np.minimum(q, 1.0)
    return result
