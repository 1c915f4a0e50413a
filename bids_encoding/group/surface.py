"""The group's maps on the cortical surface (fsaverage5, GIFTI): its volume maps projected (nilearn
``vol_to_surf``), and the regions of its ROI tables as surface labels, for the report's outlines."""

import logging

import nibabel as nib
import numpy as np

from bids_encoding.surface import PROJECTION, SURFACE_SPACE, project, projectable

LOGGER = logging.getLogger(__name__)
SURFACE_STATS = ("t", "r", "slope")  # the t maps (thresholded ones too), L - R, the scaling slopes


def project_group_maps(output, mask_img, regions):
    """Project the staged group maps of :data:`SURFACE_STATS` onto fsaverage5 and write the ROIs as labels.

    Parameters
    ----------
    output : GroupOutput
    mask_img : Niimg
        The group's symmetric mask: only its voxels are sampled.
    regions : dict
        ``{atlas or None: {region_hemi: bool mask}}``: the sphere ROIs (``None``) and an atlas's regions.
    """
    space = output.entities["space"]
    if not projectable(space):
        LOGGER.info("space-%s is not an MNI space: no group maps on the cortical surface", space)
        return
    for name, relative, sidecar, entities in output.staged_maps():
        if name.stat not in SURFACE_STATS:
            continue
        thresholded = "Threshold" in sidecar
        record = {"Source": "the group's volume map projected", "Space": SURFACE_SPACE,
                  "Volume": f"bids::{relative.as_posix()}", **PROJECTION,
                  "Interpolation": "thresholded" if thresholded else "linear"}
        projected = project(nib.load(output.staging / relative), mask_img, record["Interpolation"])
        if (name.desc or "").startswith("LminusR"):  # defined on the left voxels only
            projected = {"L": projected["L"]}
        output.write_surface(projected, {**sidecar, "Surface": record}, **entities)
    for atlas, masks in regions.items():
        if not masks:
            continue
        labels = np.zeros(mask_img.shape, dtype=np.int16)
        names = {}
        for index, (region, mask) in enumerate(masks.items(), start=1):
            labels[mask & (labels == 0)] = index
            names[index] = region
        projected = project(nib.Nifti1Image(labels, mask_img.affine), interpolation="nearest_most_frequent")
        output.write_surface({hemi: np.rint(np.nan_to_num(values)).astype(int) for hemi, values in projected.items()},
                             {"Description": f"The regions of the {atlas or 'ROI'} table on the surface (labels as in "
                              "its region column), for the report's outlines",
                              "Surface": {"Source": "the regions' volume masks projected", "Space": SURFACE_SPACE,
                                          **PROJECTION, "Interpolation": "nearest_most_frequent"}},
                             suffix="dseg", label_names=names, atlas=atlas, desc="rois")

