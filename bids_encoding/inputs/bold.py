"""BOLD: brain mask, masking, and per-run cleaning (nilearn)."""

import zlib

import numpy as np
from nilearn import image, masking

from bids_encoding.design.cleaning import Cleaning
from bids_encoding.errors import BadDataError, MissingInputError


def read_bold(bold_path, read):
    """``read(str(bold_path))``; a truncated or corrupt file (nibabel and gzip raise many kinds) stops with a
    line that names it."""
    try:
        return read(str(bold_path))
    except (EOFError, OSError, ValueError, zlib.error) as error:
        raise BadDataError(f"cannot read the data of {bold_path}: the file is truncated or corrupt ({error}); "
                           "fetch it again (e.g. datalad get)") from error


def brain_mask(bold_paths, mask_path=None, notes=None):
    """Return the brain mask on the BOLD grid.

    Parameters
    ----------
    bold_paths : list of Path
        The participant's BOLD runs (all on one grid).
    mask_path : Path or None
        A given mask, resampled (nearest neighbour) to the BOLD grid when its
        grid differs; ``None`` computes one from the data with
        ``nilearn.masking.compute_multi_epi_mask``.
    notes : dict or None
        ``{bold_path: [note, ...]}``, extended with the non-finite voxels left out.

    Returns
    -------
    nibabel.Nifti1Image
    """
    reference = image.load_img(str(bold_paths[0]))
    if mask_path is not None:
        try:
            mask = image.load_img(str(mask_path))
        except Exception as error:
            raise MissingInputError(f"cannot read mask {mask_path}: {error}") from error
        if mask.shape[:3] != reference.shape[:3] or not np.allclose(mask.affine, reference.affine):
            mask = image.resample_to_img(mask, reference, interpolation="nearest",
                                         force_resample=True, copy_header=True)
        data = np.asarray(mask.dataobj) > 0
        if not data.any():
            raise BadDataError(f"mask {mask_path} is empty on the grid of {bold_paths[0]}")
        return image.new_img_like(reference, data.astype(np.uint8), copy_header=False)
    mean_images = [read_bold(path, lambda p: image.mean_img(p, copy_header=True)) for path in bold_paths]
    for path, mean in zip(bold_paths, mean_images):
        invalid = int((~np.isfinite(mean.get_fdata())).sum())
        if invalid and notes is not None:
            notes.setdefault(path, []).append(f"{invalid} voxel(s) with NaN or infinite values left out of the "
                                              "computed brain mask")
    mask = masking.compute_multi_epi_mask(mean_images, threshold=0.5)
    if not np.asarray(mask.dataobj).any():
        raise BadDataError(f"no brain found in {bold_paths[0]}: give a mask with --mask")
    return mask


def clean_run_bold(bold_path, mask_img, repetition_time, trim_start=0, trim_end=0, cleaning=Cleaning(),
                   notes=None):
    """Mask, trim and clean one run (:class:`~bids_encoding.design.cleaning.Cleaning`, as the design).

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
    return cleaning.apply(data, repetition_time)
