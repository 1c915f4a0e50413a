"""Design settings: which design, its parameters, and the trimming; regressors of a run."""

from dataclasses import asdict, dataclass

import numpy as np

from bids_encoding.design.base import frame_times
from bids_encoding.design.cleaning import Cleaning
from bids_encoding.design.kinds import DESIGNS, design_kind

# Bump when the design or the cleaning computes other numbers for the same settings: reruns then fit again
# (derivatives/resume.py, docs/usage.md "Versions"). 1: as of bids_encoding 0.2.0.
DESIGN_CODE_VERSION = 1


@dataclass(frozen=True)
class DesignSettings:
    """How features become regressors.

    Attributes
    ----------
    kind : str
        A registered design (:mod:`bids_encoding.design.kinds`): ``hrf``,
        features convolved with the HRF (Bonnasse-Gahot & Pallier), or
        ``lanczos-fir``, Lanczos resampling then FIR delays (Antonello et al.).
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
    delays_across_runs : bool
        ``lanczos-fir`` only. ``False`` (default): each whole run is delayed
        (zeros before its first scan), then trimmed and cleaned. ``True``
        (Antonello et al.'s code): each run is trimmed and z-scored undelayed,
        and the delays shift the stacked training runs
        (:meth:`delayed_runs`): a training run's first rows hold the end of
        the training run before it; the test run gets zeros.
    """

    kind: str = "hrf"
    hrf_model: str = "glover"
    oversampling: int = 50
    frame_time_offset: float = 0.5
    trim_start: int = 10
    trim_end: int = 5
    fir_delays: tuple = (1, 2, 3, 4)
    lanczos_window: int = 3
    delays_across_runs: bool = False

    def __post_init__(self):
        design_kind(self.kind)
        if self.delays_across_runs and self.kind != "lanczos-fir":
            raise ValueError("delays across runs exist for the lanczos-fir design only")

    def record(self):
        """The settings of this design (other designs' settings left out)."""
        own = design_kind(self.kind).settings
        others = {field for kind in DESIGNS.values() for field in kind.settings} - set(own)
        if not self.delays_across_runs:
            others.add("delays_across_runs")  # records of fits before the option stay equal
        return {key: value for key, value in asdict(self).items() if key not in others}

    def word_matrix(self, words, n_scans, repetition_time):
        """``(n_scans, n_words)`` matrix that brings word features to scan times."""
        times = frame_times(n_scans, repetition_time, self.frame_time_offset)
        return design_kind(self.kind).word_matrix(words, times, repetition_time, self)

    def resampled(self, events, values, n_scans, repetition_time):
        """``word_matrix(events, ...) @ values``: features of many events with few dimensions (audio frames) at the
        scan times. With the HRF design, one convolution per dimension with the values as the events' amplitudes
        (nilearn's ``compute_regressor`` is linear in them) instead of one per event: 2,250 frames of one
        dimension took 19 s one event at a time."""
        values = np.asarray(values, dtype=np.float64)
        if self.kind != "hrf" or values.shape[1] >= len(events):
            return self.word_matrix(events, n_scans, repetition_time) @ values
        from bids_encoding.design.hrf import event_regressors

        times = frame_times(n_scans, repetition_time, self.frame_time_offset)
        return event_regressors(events["onset"], events["duration"], values, times, self.hrf_model,
                                self.oversampling)

    def regressors(self, features, matrix, repetition_time, cleaning=None, confounds=None):
        """Regressors of one run from its word features and :meth:`word_matrix` (``matrix=None``: ``features`` are
        already at the scan times, :meth:`resampled`).

        The whole run is resampled (and expanded: FIR delays), then trimmed,
        then cleaned as the BOLD (``cleaning``, a :class:`Cleaning`: detrend,
        high-pass, z-score last; or z-scored only where it says so), with what of the run's ``confounds``
        (:class:`~bids_encoding.inputs.confounds.RunConfounds`) applies to a
        design: the cosines and the censored scans.
        """
        design = np.asarray(features, dtype=np.float64) if matrix is None else matrix @ np.asarray(features,
                                                                                                 dtype=np.float64)
        if not self.delays_across_runs:
            design = design_kind(self.kind).expand(design, self)
        return (cleaning or Cleaning()).design_run(design, repetition_time, self.trim_start, self.trim_end,
                                                   confounds=confounds)

    def delayed_runs(self, designs, train_runs, test_runs):
        """With ``delays_across_runs``, the FIR delays of the runs' trimmed designs as Antonello et al.'s
        ``make_delayed`` shifts the stacked training matrix (``ridge_utils/util.py``): ``train_runs`` stacked in
        that order (the ridge's), then each of ``test_runs`` alone. Otherwise ``designs`` unchanged."""
        if not self.delays_across_runs:
            return designs
        from bids_encoding.design.lanczos import fir_delays

        delayed = list(designs)
        if train_runs:
            stacked = fir_delays(np.concatenate([designs[run] for run in train_runs]), self.fir_delays)
            bounds = np.cumsum([0] + [len(designs[run]) for run in train_runs])
            for run, start, stop in zip(train_runs, bounds[:-1], bounds[1:]):
                delayed[run] = stacked[start:stop]
        for run in test_runs:
            delayed[run] = fir_delays(designs[run], self.fir_delays)
        return delayed
