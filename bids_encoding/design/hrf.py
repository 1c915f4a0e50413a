"""Word features convolved with the HRF at the scan times (nilearn's ``compute_regressor``)."""

from dataclasses import asdict, dataclass

import numpy as np
from nilearn.glm.first_level import compute_regressor


@dataclass(frozen=True)
class DesignSettings:
    """How features become regressors.

    Attributes
    ----------
    kind : str
        ``hrf``: features convolved with the HRF (Bonnasse-Gahot & Pallier);
        ``lanczos-fir``: Lanczos resampling then FIR delays (Antonello et al.).
    hrf_model : str
        Any ``hrf_model`` of ``nilearn.glm.first_level.compute_regressor``.
    oversampling : int
        Temporal oversampling of the convolution.
    frame_time_offset : float
        Acquisition time of each scan as a fraction of TR
        (0.5: the middle of the volume, as Bonnasse-Gahot & Pallier).
    trim_start, trim_end : int
        Scans dropped at the start and end of each run (BOLD and design);
        10 and 5 by default: both seed papers drop the first 10 scans,
        Antonello et al. also the last 5 (Bonnasse-Gahot & Pallier the last
        10).
    fir_delays : tuple of int
        Delays in scans for ``lanczos-fir``.
    lanczos_window : int
        Lobes of the Lanczos kernel.
    """

    kind: str = "hrf"
    hrf_model: str = "glover"
    oversampling: int = 50
    frame_time_offset: float = 0.5
    trim_start: int = 10
    trim_end: int = 5
    fir_delays: tuple = (1, 2, 3, 4)
    lanczos_window: int = 3

    def record(self):
        record = asdict(self)
        for key in (("fir_delays", "lanczos_window") if self.kind == "hrf" else ("hrf_model", "oversampling")):
            record.pop(key)
        return record

    def word_matrix(self, words, n_scans, repetition_time):
        """``(n_scans, n_words)`` matrix that brings word features to scan times."""
        times = frame_times(n_scans, repetition_time, self.frame_time_offset)
        if self.kind == "hrf":
            return word_response_matrix(words["onset"], words["duration"], times, self.hrf_model, self.oversampling)
        from bids_encoding.design.lanczos import lanczos_matrix

        midpoints = np.asarray(words["onset"]) + np.asarray(words["duration"]) / 2
        return lanczos_matrix(midpoints, times, repetition_time, self.lanczos_window)

    def regressors(self, features, matrix, repetition_time, cleaning=None):
        """Regressors of one run from its word features and :meth:`word_matrix`.

        The whole run is convolved (or resampled and delayed), then trimmed,
        then cleaned as the BOLD (``cleaning``, a
        :class:`~bids_encoding.design.cleaning.Cleaning`: detrend, high-pass,
        z-score last).
        """
        from bids_encoding.design.cleaning import Cleaning

        if self.kind == "hrf":
            design = matrix @ np.asarray(features, dtype=np.float64)
        else:
            from bids_encoding.design.lanczos import fir_delays

            design = fir_delays(matrix @ np.asarray(features, dtype=np.float64), self.fir_delays)
        design = design[self.trim_start: design.shape[0] - self.trim_end]
        return (cleaning or Cleaning()).apply(design, repetition_time)


def frame_times(n_scans, repetition_time, offset=0.5):
    """Acquisition time of every scan, in seconds."""
    return (np.arange(n_scans) + offset) * repetition_time


def word_response_matrix(onsets, durations, times, hrf_model="glover", oversampling=50):
    """HRF response at ``times`` to each word as a unit-amplitude event.

    ``compute_regressor`` is linear in the event amplitudes, so the
    regressor of any feature is this matrix times the feature's values:
    one call per word instead of one per word and feature dimension.

    Returns
    -------
    numpy.ndarray
        ``(n_scans, n_words)``.
    """
    columns = [
        compute_regressor(np.array([[onset], [duration], [1.0]]), hrf_model, times,
                          oversampling=oversampling)[0][:, 0]
        for onset, duration in zip(onsets, durations)
    ]
    return np.stack(columns, axis=1)
