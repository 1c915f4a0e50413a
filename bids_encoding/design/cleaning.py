"""One per-run cleaning for both sides of the regression: the BOLD data and the design.

The BOLD is detrended, high-passed and z-scored (and confounds regressed
out). A design left uncleaned keeps the slow components the BOLD no longer
has, and they enter the predictions: on 5 runs of 300 scans with slowly
drifting features, test r was 0.24 with a z-scored design and 0.32 with
the design cleaned as the BOLD. So the design gets exactly the same nilearn
``signal.clean`` call, after trimming, and z-scoring comes last (the ridge
has no intercept).

A procedure preset (:mod:`bids_encoding.procedures`) can ask for a seed's
own order instead: Bonnasse-Gahot & Pallier clean each whole run, then trim
and z-score it again (population standard deviation), and only z-score the
design (``order="whole-run"``, ``design="zscore"``, ``ddof=0``).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_HIGH_PASS = 1.0 / 128  # Hz, as Bonnasse-Gahot & Pallier
ORDERS = ("trim-first", "whole-run")
DESIGN_CLEANINGS = ("as-bold", "zscore")


SAVGOL_ORDER = 2


def savgol_trend(data, window_seconds, repetition_time):
    """The slow trend of each column: a Savitzky-Golay fit of order 2 over the odd number of scans nearest
    ``window_seconds`` (at most the run's length; scipy, ``mode="interp"``)."""
    from scipy.signal import savgol_filter

    length = int(round(window_seconds / repetition_time)) // 2 * 2 + 1
    length = min(length, len(data) - (1 - len(data) % 2))
    return savgol_filter(data, length, SAVGOL_ORDER, axis=0)


@dataclass(frozen=True)
class Cleaning:
    """Per-run cleaning of BOLD and design, and how the BOLD is read.

    Attributes
    ----------
    detrend : bool
        Remove a linear trend.
    high_pass : float or None
        Butterworth high-pass cutoff in Hz (nilearn); ``None``: none.
    order : {"trim-first", "whole-run"}
        ``trim-first``: trim the run, then clean what is kept (default);
        ``whole-run``: clean the whole run, then trim and z-score again
        (Bonnasse-Gahot & Pallier; confounds cannot be regressed this way).
    design : {"as-bold", "zscore"}
        The design is cleaned as the BOLD (default), or trimmed and z-scored
        only (Bonnasse-Gahot & Pallier).
    ddof : int
        Degrees of freedom of the last z-scoring: 1 (nilearn's
        ``zscore_sample``, default) or 0 (numpy's population standard
        deviation, the seeds' ``standardize``).
    smoothing_fwhm : float or None
        Gaussian smoothing of the BOLD image before masking (mm, nilearn).
    savgol_window : float or None
        Seconds: a Savitzky-Golay fit (order 2, scipy) over this window is
        subtracted before nilearn's cleaning (the Huth lab's detrending,
        LeBel et al. 2023, 120 s); the window in scans is the odd number
        nearest ``savgol_window / TR``. ``None``: none.
    grid : tuple or None
        ``(affine rows, shape)``: the BOLD is resampled to this grid
        (nilearn ``resample_img``, continuous) before masking; ``None``: its
        own grid.
    """

    detrend: bool = True
    high_pass: float | None = DEFAULT_HIGH_PASS
    order: str = "trim-first"
    design: str = "as-bold"
    ddof: int = 1
    smoothing_fwhm: float | None = None
    savgol_window: float | None = None
    grid: tuple | None = None

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"cleaning order must be one of {ORDERS}")
        if self.design not in DESIGN_CLEANINGS:
            raise ValueError(f"design cleaning must be one of {DESIGN_CLEANINGS}")

    def apply(self, data, repetition_time, confounds=None, sample_mask=None):
        """Clean the columns of one run ``(n_scans, n_columns)``; z-scored last (nilearn: ``zscore_sample``,
        near-constant columns left unscaled), float32.

        ``confounds`` ``(n_scans, k)`` are regressed out (nilearn filters them alike first); ``sample_mask``
        (kept scan indices) censors the other scans: nilearn interpolates them for the filter, then drops
        them, so the result has ``len(sample_mask)`` rows.
        """
        from nilearn import signal

        data = np.asarray(data, dtype=np.float64)
        if self.savgol_window:
            data = data - savgol_trend(data, self.savgol_window, repetition_time)
        # butterworth__copy: nilearn's in-place filter loops over the columns in Python; the copy filters them
        # all in one call, with identical results: 0.6 s instead of 11.6 s for 300 scans x 20,000 columns
        # (2-core CPU), for one more float64 copy of the run
        cleaned = signal.clean(data, detrend=self.detrend, standardize="zscore_sample",
                               high_pass=self.high_pass or None, t_r=repetition_time, confounds=confounds,
                               sample_mask=sample_mask, ensure_finite=True, butterworth__copy=True)
        constant = data.std(axis=0) == 0
        cleaned[:, constant] = 0.0  # a constant regressor carries nothing; nilearn would leave it as is
        return cleaned.astype(np.float32)

    def zscore(self, data):
        """Z-score columns with this cleaning's ``ddof``; every non-constant column is divided by its standard
        deviation, however small (the seeds' ``standardize``; nilearn leaves near-constant ones unscaled)."""
        data = np.asarray(data, dtype=np.float64)
        std = data.std(axis=0, ddof=self.ddof)
        return np.divide(data - data.mean(axis=0), std, out=np.zeros_like(data), where=std > 0)

    def run(self, data, repetition_time, trim_start, trim_end, confounds=None):
        """One whole run ``(n_scans, n_columns)`` trimmed and cleaned in this cleaning's ``order``.

        ``confounds`` (:class:`~bids_encoding.inputs.confounds.RunConfounds`) need ``trim-first``: their
        window, censoring and cosines follow the kept scans.
        """
        n_scans = len(data)
        if self.order == "whole-run":
            if confounds is not None:
                raise ValueError("confounds cannot be regressed when whole runs are cleaned before trimming")
            cleaned = self.apply(data, repetition_time)
            return self.zscore(cleaned[trim_start:n_scans - trim_end]).astype(np.float32)
        columns, kept = None, None
        if confounds is not None:
            columns, _, kept = confounds.window(trim_start, n_scans - trim_end)
        cleaned = self.apply(data[trim_start:n_scans - trim_end], repetition_time, confounds=columns,
                             sample_mask=kept)
        return cleaned if self.ddof == 1 else self.zscore(cleaned).astype(np.float32)

    def design_run(self, design, repetition_time, trim_start, trim_end, confounds=None):
        """A run's whole design trimmed, then cleaned as the BOLD (``as-bold``) or z-scored (``zscore``)."""
        n_scans = len(design)
        if self.design == "zscore":
            return self.zscore(design[trim_start:n_scans - trim_end]).astype(np.float32)
        cosines, kept = None, None
        if confounds is not None:
            _, cosines, kept = confounds.window(trim_start, n_scans - trim_end)
        return self.apply(design[trim_start:n_scans - trim_end], repetition_time, confounds=cosines,
                          sample_mask=kept)

    def read(self, bold_path, mask_img, resampled_dir=None):
        """The run's BOLD over ``mask_img`` ``(n_scans, n_voxels)``: resampled to ``grid`` and smoothed first
        when asked (``mask_img`` is then on ``grid``); ``resampled_dir`` keeps the resampled run for the next
        reading (:meth:`resampled`)."""
        from nilearn import masking

        return masking.apply_mask(self.resampled(bold_path, resampled_dir), mask_img,
                                  smoothing_fwhm=self.smoothing_fwhm)

    def resampled(self, bold_path, resampled_dir=None):
        """The run on ``grid`` (nilearn ``resample_img``, continuous), or its path when there is no grid.

        A procedure reads each run two or three times (its mask, the participant, the average participant);
        in ``resampled_dir`` the first reading writes the resampled run (uncompressed float32 NIfTI, named by
        the file's path, size, time and the grid) and the others read it: 3 s per resampling of 80 volumes
        to the 4 mm grid (2-core CPU), a tenth of that to read it back.
        """
        import hashlib

        import nibabel as nib
        from nilearn import image

        from bids_encoding.atomic import atomic_write

        if self.grid is None:
            return str(bold_path)
        stat = Path(bold_path).stat()
        key = hashlib.sha256(repr((str(Path(bold_path).resolve()), stat.st_size, stat.st_mtime_ns, self.grid))
                             .encode()).hexdigest()[:20]
        cached = Path(resampled_dir) / f"{Path(bold_path).name.split('.')[0]}_{key}.nii" if resampled_dir else None
        if cached is not None and cached.is_file():
            return nib.load(cached)
        affine, shape = self.grid
        img = image.resample_img(str(bold_path), target_affine=np.asarray(affine), target_shape=tuple(shape),
                                 force_resample=True, copy_header=True)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cached, img.to_filename, suffix=".nii")  # several jobs may share the work folder
        return img

    @classmethod
    def from_record(cls, record):
        """The cleaning a sidecar's ``Cleaning`` section records."""
        grid = record.get("Grid")
        return cls(detrend=bool(record["Detrend"]), high_pass=record["HighPassHz"],
                   order=record.get("Order", "trim-first"), design=record.get("Design", "as-bold"),
                   ddof=int(record.get("StandardDeviationDdof", 1)), smoothing_fwhm=record.get("SmoothingFWHM"),
                   savgol_window=record.get("SavitzkyGolayWindowSeconds"),
                   grid=(tuple(tuple(row) for row in grid["Affine"]), tuple(grid["Shape"])) if grid else None)

    def record(self):
        """For the sidecars (what differs from the default order only where it does: older records stay equal)."""
        if self.order == "trim-first" and self.design == "as-bold":
            applied = "BOLD and design alike, per run, after trimming"
        else:
            applied = {"trim-first": "BOLD: per run, after trimming", "whole-run":
                       "BOLD: per whole run, then trimmed and z-scored again"}[self.order] + \
                "; design: " + {"as-bold": "as the BOLD", "zscore": "trimmed, then z-scored only"}[self.design]
        record = {"Detrend": self.detrend, "HighPassHz": self.high_pass, "Filter": "butterworth (nilearn)",
                  "Standardize": "zscore per run, last", "AppliedTo": applied}
        if self.order != "trim-first":
            record["Order"] = self.order
        if self.design != "as-bold":
            record["Design"] = self.design
        if self.ddof != 1:
            record["StandardDeviationDdof"] = self.ddof
        if self.smoothing_fwhm:
            record["SmoothingFWHM"] = self.smoothing_fwhm
        if self.savgol_window:
            record["SavitzkyGolayWindowSeconds"] = self.savgol_window
            record["SavitzkyGolayOrder"] = SAVGOL_ORDER
        if self.grid is not None:
            record["Grid"] = {"Affine": [list(row) for row in self.grid[0]], "Shape": list(self.grid[1]),
                              "Interpolation": "continuous (nilearn resample_img)"}
        return record
