"""Hemispheres, for the participant and group levels: template spaces (and their TemplateFlow files), symmetric
masks and left/right mirrors on a template grid (x < 0 is left)."""

import os

import nibabel as nib
import numpy as np

from bids_encoding.errors import BadDataError

# The demo's own space: its synthetic 8 mm grid is laid out as MNI152 (x < 0 left, x = 0 the midline), so
# hemisphere and group analyses hold; it has no TemplateFlow files (no template mask, no ROI coverage).
SYNTHETIC_SPACES = ("DemoMNI",)

# Left-hemisphere MNI centres (mm) of the language ROIs used by Bonnasse-Gahot & Pallier (2024), taken from
# their code (roi masks script): TP, aSTS, pSTS from Pallier, Devauchelle & Dehaene (2011); BA44, BA45, BA47
# from Zaccarella, Schell & Friederici (2017); AG/TPJ from Price et al. (2015). Each is mirrored to the right
# hemisphere (x -> -x); --roi-file replaces them.
LANGUAGE_ROIS = {
    "TP": (-48, 15, -27),
    "aSTS": (-54, -12, -12),
    "pSTS": (-51, -39, 3),
    "AGTPJ": (-52, -56, 22),
    "BA45": (-52, 28, 10),
    "BA47": (-44, 34, -8),
    "BA44": (-50, 12, 16),
}
ROI_RADIUS_MM = 10.0


def is_template_space(space):
    """Whether ``space`` is a template space, where x = 0 is the midline: a TemplateFlow template, or the
    demo's synthetic space."""
    return space in SYNTHETIC_SPACES or in_templateflow(space)


def in_templateflow(space):
    """Whether ``space`` names a TemplateFlow template (from the package's bundled list; no download)."""
    if space in SYNTHETIC_SPACES:
        return False
    try:
        import templateflow.api

        return space in templateflow.api.templates()
    except Exception:  # an unreadable TEMPLATEFLOW_HOME must not stop the analysis over a warning
        return str(space).startswith("MNI")


def check_mirror_symmetric(affine, shape):
    """Raise unless every voxel's mirror across x = 0 is a voxel of the grid's lattice.

    That needs x to depend on the first voxel index alone (no rotation
    mixing it with the others) and the grid's x origin ``x0`` to be a whole
    or half multiple of the voxel size ``dx`` (``2 x0 / dx`` an integer).
    """
    affine = np.asarray(affine, dtype=float)
    dx, x0 = affine[0, 0], affine[0, 3]
    tolerance = 1e-3 * max(abs(dx), 1e-6)
    aligned = abs(dx) > 0 and np.all(np.abs(affine[0, 1:3]) < tolerance) and \
        np.all(np.abs(affine[1:3, 0]) < tolerance)
    steps = 2 * x0 / dx if aligned else np.nan
    if not aligned or abs(steps - round(steps)) > 1e-3:
        raise BadDataError(
            f"the image grid is not symmetric about x = 0 (voxel size {dx:g} mm, x origin {x0:g} mm"
            f"{'' if aligned else ', rotated axes'}): left and right voxels cannot be paired; resample the data "
            "to a template grid (e.g. fMRIPrep's --output-spaces MNI152NLin2009cAsym:res-2)")


def mirror_indices(affine, shape):
    """For each voxel, the flat index of its mirror across x = 0 (-1 outside the grid or on the midline).

    Raises
    ------
    BadDataError
        When the grid is not symmetric about x = 0 (:func:`check_mirror_symmetric`).
    """
    check_mirror_symmetric(affine, shape)
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    xyz[:, 0] *= -1
    mirrored = np.round(nib.affines.apply_affine(np.linalg.inv(affine), xyz)).astype(int)
    inside = np.all((mirrored >= 0) & (mirrored < np.array(shape)), axis=1)
    flat = np.full(len(ijk), -1)
    flat[inside] = np.ravel_multi_index(mirrored[inside].T, shape)
    voxel_size = np.abs(affine[0, 0]) or 1.0
    flat[np.abs(nib.affines.apply_affine(affine, ijk)[:, 0]) < voxel_size / 2] = -1  # midline: neither side
    return flat


def symmetric_mask(masks, affine, min_fraction=1.0):
    """The voxels in at least ``min_fraction`` of the masks (1: their intersection), intersected with the
    mirror image of that set; the midline (|x| < half a voxel) excluded.

    Returns
    -------
    mask : bool array (grid shape)
    left : bool array (grid shape), x < 0 voxels of the mask
    mirror : int array (flat), mirror index of every voxel
    """
    count = np.sum([np.asarray(m, dtype=bool) for m in masks], axis=0)
    mask = count >= max(1, int(np.ceil(min_fraction * len(masks) - 1e-9)))
    mirror = mirror_indices(affine, mask.shape)
    flat = mask.ravel()
    symmetric = flat & (mirror >= 0)
    symmetric[symmetric] &= flat[mirror[symmetric]]
    symmetric = symmetric.reshape(mask.shape)
    x = nib.affines.apply_affine(affine, np.indices(mask.shape).reshape(3, -1).T)[:, 0].reshape(mask.shape)
    return symmetric, symmetric & (x < 0), mirror


def hemisphere_scores(r_map, left, mirror):
    """Left, right (mirrors of the left voxels), L-R and lateralization index (L-R)/(L+R)."""
    flat = np.asarray(r_map).ravel()
    left_flat = np.flatnonzero(left.ravel())
    left_mean = float(np.nanmean(flat[left_flat]))  # NaN: a voxel outside this participant's own mask
    right_mean = float(np.nanmean(flat[mirror[left_flat]]))
    total = left_mean + right_mean
    return {"left": left_mean, "right": right_mean, "l_minus_r": left_mean - right_mean,
            "lateralization_index": (left_mean - right_mean) / total if total else float("nan")}


def symmetric_subset(voxels, left, mirror):
    """Left voxels of ``left`` where the voxel or its mirror is in ``voxels`` (a set matched in both hemispheres)."""
    flat = np.asarray(voxels, dtype=bool).ravel()
    left_flat = left.ravel()
    mirrored = np.zeros_like(flat)
    mirrored[left_flat] = flat[mirror[left_flat]]
    return (left_flat & (flat | mirrored)).reshape(left.shape)


def mirror_difference(r_map, left, mirror):
    """Map minus its mirror image on the ``left`` voxels (0 elsewhere, the right hemisphere included)."""
    flat = np.asarray(r_map, dtype=float).ravel()
    out = np.zeros_like(flat)
    indices = np.flatnonzero(left.ravel())
    out[indices] = flat[indices] - flat[mirror[indices]]
    return out.reshape(np.shape(r_map))


def templateflow_file(template, **entities):
    """First non-empty TemplateFlow file matching ``entities``, or None (with the reason)."""
    import templateflow.api as templateflow

    try:
        found = templateflow.get(template, **entities)
    except Exception as error:  # templateflow raises whatever its download or index layer raises
        return None, (str(error).splitlines() or [type(error).__name__])[0]
    found = found if isinstance(found, list) else [found] if found else []
    found = [path for path in found if path and os.path.getsize(path) > 0]
    return (found[0], None) if found else (None, "not found")
