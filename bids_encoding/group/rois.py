"""Language regions: Bonnasse-Gahot & Pallier's 10 mm spheres (left, mirrored to the right), and atlas parcels."""

import numpy as np
import nibabel as nib

from bids_encoding.errors import MissingInputError

# Approximate MNI coordinates (mm) of the left-hemisphere language ROIs of Pallier, Devauchelle & Dehaene
# (2011), as used by Bonnasse-Gahot & Pallier (2024); each is mirrored to the right hemisphere. They were
# written from memory of the papers, not checked against their tables: --roi-file replaces them.
LANGUAGE_ROIS = {
    "TP": (-48, 15, -27),
    "aSTS": (-54, -12, -12),
    "pSTS": (-51, -39, 3),
    "AGTPJ": (-52, -56, 22),
    "BA45": (-51, 21, 21),
    "BA47": (-42, 27, -6),
    "BA44": (-51, 12, 12),
}
ROI_RADIUS_MM = 10.0
ATLASES = {
    "HarvardOxford": {"atlas": "HOCPA", "desc": "th25"},
    "Schaefer2018": {"atlas": "Schaefer2018", "desc": "400Parcels7Networks"},
}


def read_roi_file(path):
    """ROIs from a TSV with columns ``name``, ``x``, ``y``, ``z`` (left-hemisphere MNI mm)."""
    import pandas as pd

    from bids_encoding.errors import BadDataError

    try:
        table = pd.read_csv(path, sep="\t")
        return {str(row["name"]): (float(row["x"]), float(row["y"]), float(row["z"])) for _, row in table.iterrows()}
    except (OSError, KeyError, ValueError) as error:
        raise BadDataError(f"cannot read ROI file {path}: {error} (columns: name, x, y, z)") from error


def sphere_masks(affine, shape, rois=LANGUAGE_ROIS, radius=ROI_RADIUS_MM):
    """``{name_hemi: bool mask}`` for each ROI sphere and its right-hemisphere mirror."""
    xyz = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T).reshape(*shape, 3)
    masks = {}
    for name, (x, y, z) in rois.items():
        for hemi, sign in (("L", 1), ("R", -1)):
            center = np.array([sign * x, y, z], dtype=float)
            masks[f"{name}_{hemi}"] = np.linalg.norm(xyz - center, axis=-1) <= radius
    return masks


def atlas_parcels(atlas, space, reference_img):
    """Parcels of a TemplateFlow atlas resampled (nearest) to the data grid.

    Returns
    -------
    dict
        ``{parcel name: bool mask}``.
    """
    import pandas as pd
    from nilearn import image

    settings = ATLASES[atlas]
    try:
        import templateflow.api as templateflow

        path = templateflow.get(space, atlas=settings["atlas"], desc=settings["desc"], suffix="dseg",
                                extension=".nii.gz", resolution=[1, 2, None])
        labels = templateflow.get(space, atlas=settings["atlas"], desc=settings["desc"], suffix="dseg",
                                  extension=".tsv")
    except Exception as error:
        path, labels = None, None
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    else:
        reason = "not found"
    path = path[0] if isinstance(path, list) and path else path
    labels = labels[0] if isinstance(labels, list) and labels else labels
    if not path or not labels or (hasattr(path, "stat") and path.stat().st_size == 0):
        raise MissingInputError(
            f"TemplateFlow has no {atlas} atlas for tpl-{space} here ({reason}): prefetch it where there is "
            f"internet with python -c \"import templateflow.api as t; t.get('{space}', atlas='{settings['atlas']}', "
            f"desc='{settings['desc']}', suffix='dseg')\" and set TEMPLATEFLOW_HOME to that folder")
    atlas_img = image.resample_to_img(str(path), reference_img, interpolation="nearest", force_resample=True,
                                      copy_header=True)
    data = np.asarray(atlas_img.dataobj).astype(int)
    table = pd.read_csv(labels, sep="\t")
    names = dict(zip(table["index"], table["name"]))
    return {str(names.get(value, value)): data == value for value in np.unique(data) if value != 0}
