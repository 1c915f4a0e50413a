"""The participant's brain mask, from the first source that exists:

1. ``--mask`` (a given image);
2. the derivative's own brain masks (fMRIPrep ``_desc-brain_mask``), intersected across runs;
3. the TemplateFlow template's brain mask, when the BOLD is in a template space;
4. a mask computed from the EPI (nilearn ``compute_multi_epi_mask``), ``--epi-mask-cutoff`` as its lower cutoff.

``--procedure bgp2024`` replaces them with Bonnasse-Gahot & Pallier's recipe (:func:`seed_epi_mask`).

EPI masks lose lateral and inferior temporal cortex, where the signal drops
out, which is where language is: so sources 2 and 3 come first. Which one
was used is recorded in the mask's sidecar (:meth:`ParticipantMask.record`).
"""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_encoding.errors import BadDataError, MissingInputError
from bids_encoding.hemispheres import in_templateflow

LOGGER = logging.getLogger(__name__)
DEFAULT_EPI_LOWER_CUTOFF = 0.2  # nilearn's default
EPI_RUN_THRESHOLD = 0.5  # a voxel is kept when it is in the EPI mask of at least half of the runs


@dataclass
class ParticipantMask:
    """A brain mask on the BOLD grid and where it comes from."""

    img: object
    source: str  # given, derivative, template or epi
    files: list = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def record(self, bids_dir=None):
        """For the mask's and the maps' sidecars; files relative to ``bids_dir`` when inside it."""
        from bids_encoding.derivatives.sidecars import source_path

        files = [source_path(path, bids_dir) if bids_dir else str(path) for path in self.files]
        return {"Source": self.source, "Files": files, **self.details}


def participant_mask(runs, given=None, space=None, epi_lower_cutoff=DEFAULT_EPI_LOWER_CUTOFF, notes=None):
    """The brain mask of a participant's runs (all on one grid), from the first source that exists.

    Parameters
    ----------
    runs : list of Run
    given : Path or None
        ``--mask``.
    space : str or None
        The runs' space; a TemplateFlow template's brain mask is used when no derivative mask exists.
    epi_lower_cutoff : float
        Lower cutoff of nilearn's EPI mask (fraction of the intensity histogram); lower keeps more of the
        darker edge of the brain.
    notes : dict or None
        ``{bold_path: [note, ...]}``, extended with the non-finite voxels left out of a computed mask.

    Returns
    -------
    ParticipantMask
    """
    from nilearn import image

    reference = image.load_img(str(runs[0].bold_path))
    if given is not None:
        return ParticipantMask(_on_grid(given, reference, runs[0].bold_path), "given", [given])
    derivative = [run.brain_mask for run in runs if run.brain_mask is not None]
    if derivative:
        if len(derivative) < len(runs):
            LOGGER.warning("%d of %d runs have a derivative brain mask: the mask is the intersection of theirs",
                           len(derivative), len(runs))
        masks = [np.asarray(_on_grid(path, reference, runs[0].bold_path).dataobj) > 0 for path in derivative]
        combined = np.logical_and.reduce(masks)
        if not combined.any():
            raise BadDataError(f"the derivative brain masks of {runs[0].bold_path.name} and its other runs do not "
                               "overlap: give a mask with --mask")
        return ParticipantMask(image.new_img_like(reference, combined.astype(np.uint8), copy_header=False),
                               "derivative", derivative, {"Combination": "intersection over runs"})
    if space and in_templateflow(space):
        found = template_brain_mask(space, reference)
        if found is not None:
            path, img = found
            return ParticipantMask(img, "template", [path], {"Template": space})
    return _epi_mask(runs, reference, epi_lower_cutoff, notes)


def _on_grid(path, reference, bold_path):
    """A mask image resampled (nearest neighbour) to the BOLD grid when its grid differs."""
    from nilearn import image

    try:
        mask = image.load_img(str(path))
    except Exception as error:  # nibabel raises many kinds on broken files
        raise MissingInputError(f"cannot read mask {path}: {error}") from error
    if mask.shape[:3] != reference.shape[:3] or not np.allclose(mask.affine, reference.affine):
        mask = image.resample_to_img(mask, reference, interpolation="nearest", force_resample=True,
                                     copy_header=True)
    data = np.asarray(mask.dataobj) > 0
    if data.ndim > 3:
        data = data[..., 0]
    if not data.any():
        raise BadDataError(f"mask {path} is empty on the grid of {bold_path}")
    return image.new_img_like(reference, data.astype(np.uint8), copy_header=False)


def template_brain_mask(space, reference):
    """``(path, image on the BOLD grid)`` of the TemplateFlow brain mask of ``space`` at the resolution
    nearest the BOLD's, or None (logged) when TemplateFlow cannot provide it (offline, not in the template).

    Files already in TEMPLATEFLOW_HOME are preferred; otherwise the one of the nearest resolution is fetched.
    """
    import templateflow.api as templateflow

    from bids_encoding.hemispheres import templateflow_file

    voxel = float(np.mean(np.abs(reference.header.get_zooms()[:3])))
    query = dict(desc="brain", suffix="mask", extension=".nii.gz")
    try:
        listed = [Path(path) for path in templateflow.ls(space, **query)]
    except Exception:  # an unreadable TemplateFlow index: as if nothing were listed
        listed = []
    present = [path for path in listed if path.is_file() and path.stat().st_size > 0]
    if present:
        path = min(present, key=lambda p: abs(float(np.mean(nib.load(p).header.get_zooms()[:3])) - voxel))
        return path, _on_grid(path, reference, "the BOLD")
    resolutions = sorted({int(match.group(1)) for path in listed
                          if (match := re.search(r"_res-0*(\d+)_", path.name))}, key=lambda r: abs(r - voxel))
    path, reason = templateflow_file(space, **({"resolution": resolutions[0]} if resolutions else {}), **query)
    if path is None:
        if "Connection" in reason or "Resolution" in reason:
            reason = "not in TEMPLATEFLOW_HOME, and it cannot be downloaded"
        LOGGER.warning("no TemplateFlow brain mask of %s (%s): the mask is computed from the EPI, which can miss "
                       "lateral and inferior temporal cortex; prefetch it into TEMPLATEFLOW_HOME or give --mask",
                       space, reason)
        return None
    return path, _on_grid(path, reference, "the BOLD")


def _epi_mask(runs, reference, lower_cutoff, notes):
    from nilearn import image, masking

    from bids_encoding.inputs.bold import read_bold

    mean_images = [read_bold(run.bold_path, lambda p: image.mean_img(p, copy_header=True)) for run in runs]
    for run, mean in zip(runs, mean_images):
        invalid = int((~np.isfinite(mean.get_fdata())).sum())
        if invalid and notes is not None:
            notes.setdefault(run.bold_path, []).append(
                f"{invalid} voxel(s) with NaN or infinite values left out of the computed brain mask")
    mask = masking.compute_multi_epi_mask(mean_images, lower_cutoff=lower_cutoff, threshold=EPI_RUN_THRESHOLD)
    if not np.asarray(mask.dataobj).any():
        raise BadDataError(f"no brain found in {runs[0].bold_path}: give a mask with --mask")
    return ParticipantMask(mask, "epi", [], {"Method": "nilearn compute_multi_epi_mask",
                                            "LowerCutoff": lower_cutoff, "RunThreshold": EPI_RUN_THRESHOLD})


def seed_epi_mask(runs, cleaning, resampled_dir=None):
    """Bonnasse-Gahot & Pallier's mask (``compute_mask.py``): nilearn ``compute_multi_epi_mask`` of every run,
    resampled to the cleaning's grid (threshold 0.5), intersected with its left-right mirror
    (``swap_img_hemispheres``). Run by run, as ``compute_multi_epi_mask`` does, to hold one run in memory.

    Parameters
    ----------
    runs : list of Run
        Every run the mask is made of (all participants' for the average participant).
    cleaning : Cleaning
        Its ``grid`` (:meth:`Cleaning.resampled`).
    resampled_dir : Path or None
        Where resampled runs are kept for their next reading.

    Returns
    -------
    ParticipantMask
    """
    from nilearn import image, masking

    from bids_encoding.inputs.bold import read_bold

    def epi_mask(path):
        return masking.compute_epi_mask(cleaning.resampled(path, resampled_dir))

    masks = [read_bold(run.bold_path, epi_mask) for run in runs]
    mask = masking.intersect_masks(masks, connected=True, threshold=0.5)
    mask = masking.intersect_masks([mask, image.swap_img_hemispheres(mask)], threshold=1)
    if not np.asarray(mask.dataobj).any():
        raise BadDataError(f"no brain found in {runs[0].bold_path} by Bonnasse-Gahot & Pallier's EPI mask "
                           "(--procedure bgp2024): check the BOLD, or use --procedure default with --mask")
    return ParticipantMask(mask, "epi-symmetric", [], {
        "Method": "nilearn compute_epi_mask of every run, intersect_masks (threshold 0.5), intersected with "
                  "swap_img_hemispheres (Bonnasse-Gahot & Pallier, compute_mask.py)",
        "NumberOfRuns": len(runs)})
