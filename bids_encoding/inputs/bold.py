"""BOLD: reading, masking and per-run cleaning (nilearn); the mask itself is :mod:`bids_encoding.inputs.masks`."""

import zlib

import numpy as np

from bids_encoding.design.cleaning import Cleaning
from bids_encoding.errors import BadDataError
from bids_encoding.surface import DENSITIES, HEMIS, N_VERTICES, read_gifti


def read_bold(bold_path, read):
    """``read(str(bold_path))``; a truncated or corrupt file (nibabel and gzip raise many kinds) stops with a
    line that names it."""
    from xml.parsers.expat import ExpatError

    from nibabel.filebasedimages import ImageFileError

    try:
        return read(str(bold_path))
    except (EOFError, OSError, ValueError, zlib.error, ImageFileError, ExpatError) as error:  # GIFTI is XML
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
    return clean_run_data(data, repetition_time, trim, cleaning, notes, confounds)


def clean_surface_bold(paths, space, repetition_time, trim=(0, 0), cleaning=Cleaning(), notes=None, confounds=None):
    """One run of fMRIPrep's surface BOLD (``paths``: ``{"L": path, "R": path}`` in fsaverage density ``space``)
    on fsaverage5's vertices, left then right, trimmed and cleaned as :func:`clean_run_bold` cleans the volume:
    ``(n_kept_scans, 2 * 10242)`` float32."""
    data = read_surface_bold(paths, space)
    return clean_run_data(data, repetition_time, trim, cleaning, notes, confounds)


def clean_run_data(data, repetition_time, trim=(0, 0), cleaning=Cleaning(), notes=None, confounds=None):
    """:func:`clean_run_bold` of a run already read: ``data`` ``(n_scans, n_voxels)``."""
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


def read_surface_bold(paths, space):
    """Both hemispheres of one run's surface BOLD on fsaverage5's vertices: ``(n_scans, 2 * 10242)``, left
    first."""
    parts = []
    for hemi in HEMIS:
        data = np.atleast_2d(read_bold(paths[hemi], read_gifti))
        if data.shape[1] != DENSITIES[space]:
            raise BadDataError(f"{paths[hemi]}: {data.shape[1]} vertices where {space} has {DENSITIES[space]}: "
                               "give fMRIPrep's own file, or run with --surface volume")
        parts.append(data[:, :N_VERTICES])
    return np.concatenate(parts, axis=1).astype(np.float32)
