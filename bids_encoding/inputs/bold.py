"""BOLD: reading, masking and per-run cleaning (nilearn); the mask itself is :mod:`bids_encoding.inputs.masks`."""

import zlib

import numpy as np

from bids_encoding.design.cleaning import Cleaning
from bids_encoding.errors import BadDataError


def read_bold(bold_path, read):
    """``read(str(bold_path))``; a truncated or corrupt file (nibabel and gzip raise many kinds) stops with a
    line that names it."""
    try:
        return read(str(bold_path))
    except (EOFError, OSError, ValueError, zlib.error) as error:
        raise BadDataError(f"cannot read the data of {bold_path}: the file is truncated or corrupt ({error}); "
                           "fetch it again (e.g. datalad get)") from error


def clean_run_bold(bold_path, mask_img, repetition_time, trim=(0, 0), cleaning=Cleaning(), notes=None,
                   confounds=None, resampled_dir=None):
    """Mask, trim and clean one run (:class:`~bids_encoding.design.cleaning.Cleaning`, as the design, in its
    order; resampled and smoothed first where it says so), with the run's ``confounds``
    (:class:`~bids_encoding.inputs.confounds.RunConfounds`) when given; ``trim``: the scans dropped at the start
    and at the end.

    Voxels with a NaN or infinite value are set to 0 (they score 0); voxels constant over the run score 0
    too. Both are counted in ``notes`` (a list) when given. ``resampled_dir``: see ``Cleaning.resampled``.

    Returns
    -------
    numpy.ndarray
        ``(n_kept_scans, n_voxels)`` float32.
    """
    data = read_bold(bold_path, lambda path: cleaning.read(path, mask_img, resampled_dir))
    found = []
    invalid = ~np.isfinite(data).all(axis=0)
    if invalid.any():
        data = data.copy()
        data[:, invalid] = 0.0
        found.append(f"{int(invalid.sum())} voxel(s) with NaN or infinite values set to 0 (they score 0)")
    trim_start, trim_end = trim
    kept = data[trim_start:data.shape[0] - trim_end]
    constant = (kept.max(axis=0) == kept.min(axis=0)) & ~invalid
    if constant.any():
        found.append(f"{int(constant.sum())} voxel(s) constant over the run (they score 0)")
    if notes is not None:
        notes.extend(found)
    return cleaning.run(data, repetition_time, trim_start, trim_end, confounds=confounds)
