"""What a design is: how word features reach the scan times, and what it adds before trimming."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DesignKind:
    """One way to turn word features into regressors (registered in :mod:`bids_encoding.design.kinds`).

    Attributes
    ----------
    name : str
        As ``--design`` takes it.
    word_matrix : callable
        ``(words, times, repetition_time, settings) -> (n_scans, n_words)``: the matrix that brings word
        features to the scan ``times`` (a linear map, computed once per run and shared by every layer).
    expand : callable
        ``(resampled (n_scans, n_features), settings) -> (n_scans, n_regressors)``: what the design adds to
        the resampled features before trimming and cleaning (FIR delays), or nothing.
    settings : tuple of str
        The ``DesignSettings`` fields this design reads (the others stay out of its sidecar record).
    """

    name: str
    word_matrix: Callable
    expand: Callable
    settings: tuple


def frame_times(n_scans, repetition_time, offset=0.5):
    """Acquisition time of every scan, in seconds."""
    return (np.arange(n_scans) + offset) * repetition_time


def unchanged(resampled, settings):
    """No expansion: the resampled features are the regressors."""
    return resampled
