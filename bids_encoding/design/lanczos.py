"""Lanczos resampling of word features to scan times, then FIR delays (Antonello, Vaidya & Huth 2023).

As the Huth lab's ``lanczosinterp2D``: each scan time ``t`` takes
``Σ_w L(t - t_w) f_w`` with ``L(x) = a sin(πcx) sin(πcx/a) / (πcx)²``
(``L(0) = 1``, 0 beyond ``|cx| > a``), window ``a = 3`` and cutoff
``c = 1/TR``; word times are the words' midpoints. The resampled features
are stacked at delays of 1-4 scans (2-8 s at TR 2 s), then trimmed and
cleaned as the BOLD, z-scored last (:meth:`DesignSettings.regressors
<bids_encoding.design.settings.DesignSettings.regressors>`).
"""

import numpy as np

from bids_encoding.design.base import DesignKind


def lanczos_kernel(times, cutoff, window=3):
    """Lanczos weights for time differences ``times`` (seconds)."""
    x = np.asarray(times, dtype=np.float64) * cutoff
    with np.errstate(divide="ignore", invalid="ignore"):
        values = window * np.sin(np.pi * x) * np.sin(np.pi * x / window) / (np.pi ** 2 * x ** 2)
    values[x == 0] = 1.0
    values[np.abs(x) > window] = 0.0
    return values


def lanczos_matrix(word_times, scan_times, repetition_time, window=3):
    """``(n_scans, n_words)`` resampling matrix from word times to scan times."""
    cutoff = 1.0 / repetition_time
    return lanczos_kernel(np.asarray(scan_times)[:, None] - np.asarray(word_times)[None, :], cutoff, window)


def fir_delays(design, delays):
    """Stack copies of ``design`` shifted down by each delay (in scans), zero-filled."""
    n_scans = design.shape[0]
    shifted = []
    for delay in delays:
        moved = np.zeros_like(design)
        if delay >= 0:
            moved[delay:] = design[:n_scans - delay]
        else:
            moved[:delay] = design[-delay:]
        shifted.append(moved)
    return np.concatenate(shifted, axis=1)


def lanczos_word_matrix(words, times, repetition_time, settings):
    midpoints = np.asarray(words["onset"]) + np.asarray(words["duration"]) / 2
    return lanczos_matrix(midpoints, times, repetition_time, settings.lanczos_window)


def delayed(resampled, settings):
    return fir_delays(resampled, settings.fir_delays)


LANCZOS_FIR = DesignKind("lanczos-fir", lanczos_word_matrix, delayed, ("fir_delays", "lanczos_window"))
