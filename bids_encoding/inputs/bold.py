"""BOLD: reading, masking and per-run cleaning (nilearn); the mask itself is :mod:`bids_encoding.inputs.masks`."""

import zlib

import numpy as np
from nilearn import masking

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


def clean_run_bold(bold_path, mask_img, repetition_time, trim_start=0, trim_end=0, cleaning=Cleaning(),
                   notes=None, confounds=None):
    """Mask, trim and clean one run (:class:`~bids_encoding.design.cleaning.Cleaning`, as the design), with
    the run's ``confounds`` (:class:`~bids_encoding.inputs.confounds.RunConfounds`) when given.

    Voxels with a NaN or infinite value are set to 0 (they score 0); voxels constant over the run score 0
    too. Both are counted in ``notes`` (a list) when given.

    Returns
    -------
    numpy.ndarray
        ``(n_kept_scans, n_voxels)`` float32.
    """
    data = read_bold(bold_path, lambda path: masking.apply_mask(path, mask_img))
    n_scans = data.shape[0]
    data = data[trim_start:n_scans - trim_end]
    found = []
    invalid = ~np.isfinite(data).all(axis=0)
    if invalid.any():
        data = data.copy()
        data[:, invalid] = 0.0
        found.append(f"{int(invalid.sum())} voxel(s) with NaN or infinite values set to 0 (they score 0)")
    constant = (data.max(axis=0) == data.min(axis=0)) & ~invalid
    if constant.any():
        found.append(f"{int(constant.sum())} voxel(s) constant over the run (they score 0)")
    if notes is not None:
        notes.extend(found)
    columns, kept = None, None
    if confounds is not None:
        columns, _, kept = confounds.window(trim_start, n_scans - trim_end)
    return cleaning.apply(data, repetition_time, confounds=columns, sample_mask=kept)
