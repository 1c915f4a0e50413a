"""Noise ceilings.

Within a participant, from repeated presentations of one stimulus (Schoppe
et al. 2016): with ``N`` repeats ``y_1..y_N`` of a voxel, ``ȳ`` their mean,
``TP`` the mean of ``Var(y_n)``, the signal power is
``SP = (N Var(ȳ) - TP) / (N - 1)`` and the best correlation any model can
reach with ``ȳ`` is ``CC_max = sqrt(SP / Var(ȳ))``. A model's normalized
correlation is ``CC_norm = r(prediction, ȳ) / CC_max``.

Across participants (Bonnasse-Gahot & Pallier), from inter-subject
correlation: participants are split at random into halves; the mean of one
half predicts the mean of the other. With one regressor per voxel, a ridge
prediction is proportional to it, so the held-out r of "the same ridge and
CV" is the correlation of the two half means on each held-out run; it is
averaged over runs and splits.
"""

import numpy as np

from bids_encoding.ridge.scoring import correlation


def signal_power(repeats):
    """Signal power, total power and variance of the mean for repeats ``(N, n_scans, n_voxels)``."""
    repeats = np.asarray(repeats, dtype=np.float64)
    n_repeats = repeats.shape[0]
    if n_repeats < 2:
        raise ValueError("a noise ceiling needs at least 2 repeats of the stimulus")
    variance_of_mean = repeats.mean(axis=0).var(axis=0, ddof=1)
    total_power = repeats.var(axis=1, ddof=1).mean(axis=0)
    signal = (n_repeats * variance_of_mean - total_power) / (n_repeats - 1)
    return signal, total_power, variance_of_mean


def cc_max(repeats):
    """Schoppe et al.'s CC_max per voxel (0 where the signal power is not positive).

    Parameters
    ----------
    repeats : array ``(N, n_scans, n_voxels)`` or list of such arrays
        A list holds several repeated stimuli: their powers are pooled,
        weighted by their number of scans.
    """
    if isinstance(repeats, (list, tuple)):
        parts = [signal_power(r) + (np.asarray(r).shape[1],) for r in repeats]
        weights = np.array([part[3] for part in parts], dtype=float)
        signal = sum(w * part[0] for w, part in zip(weights, parts)) / weights.sum()
        variance_of_mean = sum(w * part[2] for w, part in zip(weights, parts)) / weights.sum()
    else:
        signal, _, variance_of_mean = signal_power(repeats)
    ratio = np.where(variance_of_mean > 0, signal / np.where(variance_of_mean > 0, variance_of_mean, 1.0), 0.0)
    return np.sqrt(np.clip(ratio, 0.0, 1.0))


def normalized_correlation(r, ceiling, minimum=0.05):
    """``r / CC_max``; NaN where the ceiling is below ``minimum`` (unreliable voxels)."""
    r = np.asarray(r, dtype=float)
    ceiling = np.asarray(ceiling, dtype=float)
    return np.where(ceiling >= minimum, r / np.where(ceiling > 0, ceiling, 1.0), np.nan)


def split_half_ceiling(responses, n_splits=10, seed=0):
    """Inter-subject split-half ceiling per voxel.

    Each run of each participant is read once (runs outer, participants
    inner) and added to the running sums of the halves it falls in, so memory
    holds one run's half sums for every split — ``2 x n_splits`` arrays of
    one run's shape, float32 — never the whole dataset (49 participants x 9
    runs of Le Petit Prince would be 14 GB at 4 mm).

    Parameters
    ----------
    responses : sequence over participants of sequences over runs
        ``responses[s][k]``: participant ``s``, run ``k``, an array
        ``(n_scans, n_voxels)``, z-scored, same voxels for everyone — or a
        function of no argument returning it (read when needed).
    n_splits : int
    seed : int

    Returns
    -------
    numpy.ndarray ``(n_voxels,)``
        Mean over splits and runs of r(mean of half A, mean of half B).
    """
    n_participants = len(responses)
    if n_participants < 2:
        raise ValueError("a split-half ceiling needs at least 2 participants")
    rng = np.random.default_rng(seed)
    in_half_a = np.zeros((n_splits, n_participants), dtype=bool)
    for split in range(n_splits):
        in_half_a[split, rng.permutation(n_participants)[: n_participants // 2]] = True
    size_a = in_half_a.sum(axis=1)
    size_b = n_participants - size_a
    total = 0.0
    n_runs = len(responses[0])
    for run in range(n_runs):
        sums_a = sums_b = None
        for participant in range(n_participants):
            data = responses[participant][run]
            data = np.asarray(data() if callable(data) else data, dtype=np.float32)
            if sums_a is None:
                sums_a = np.zeros((n_splits,) + data.shape, dtype=np.float32)
                sums_b = np.zeros_like(sums_a)
            for split in range(n_splits):  # in place: no copy of the sums
                (sums_a if in_half_a[split, participant] else sums_b)[split] += data
        for split in range(n_splits):
            total = total + correlation(sums_a[split] / np.float32(size_a[split]),
                                                sums_b[split] / np.float32(size_b[split]))
    return total / (n_splits * n_runs)
