"""Language regions: Bonnasse-Gahot & Pallier's 10 mm spheres (left, mirrored to the right), and atlas parcels."""

import re

import nibabel as nib
import numpy as np

from bids_encoding.errors import MissingInputError
from bids_encoding.hemispheres import LANGUAGE_ROIS, ROI_RADIUS_MM, templateflow_file  # noqa: F401 (re-exported)

# TemplateFlow atlases. Harvard-Oxford is the lateralized cortical atlas (HOCPAL) so that every region has
# a left and a right part; TemplateFlow keeps its label table only in MNI152NLin6Asym (the labels are the
# same in every template), with indices starting at 0 while the image's labels start at 1.
ATLASES = {
    "HarvardOxford": {"atlas": "HOCPAL", "desc": "th25", "labels_space": "MNI152NLin6Asym"},
    "Schaefer2018": {"atlas": "Schaefer2018", "desc": "400Parcels7Networks", "labels_space": None},
}
HEMISPHERE_TOKEN = re.compile(r"(?:^|[_\s])(LH|RH|Left|Right)(?=$|[_\s])")


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


def language_coverage(mask_img, rois=LANGUAGE_ROIS, radius=ROI_RADIUS_MM):
    """Fraction of each language ROI sphere (left and mirrored right, MNI mm) inside a brain mask, on its grid.

    Only meaningful in a template space. Spheres that fall outside the grid count as not covered.
    """
    data = np.asarray(mask_img.dataobj) > 0
    zooms = np.abs(np.diag(mask_img.affine)[:3])
    sphere_voxels = 4 / 3 * np.pi * radius ** 3 / float(np.prod(zooms))
    return {name: round(float(min(1.0, (sphere & data).sum() / max(sphere.sum(), sphere_voxels * 0.5))), 3)
            for name, sphere in sphere_masks(mask_img.affine, data.shape, rois, radius).items()}


def atlas_parcels(atlas, space, reference_img):
    """Parcels of a TemplateFlow atlas resampled (nearest) to the data grid.

    Parameters
    ----------
    atlas : str
        A key of ``ATLASES``.
    space : str
        The TemplateFlow template of the participant outputs.
    reference_img : nibabel image
        The data grid.

    Returns
    -------
    dict
        ``{parcel name: bool mask}``.
    """
    import pandas as pd
    from nilearn import image

    settings = ATLASES[atlas]
    entities = {"atlas": settings["atlas"], "desc": settings["desc"], "suffix": "dseg"}
    path, reason = None, "not found"
    for resolution in (2, 1, None):  # the 2 mm grid first: closest to fMRI, and one download only
        path, reason = templateflow_file(space, resolution=resolution, extension=".nii.gz", **entities)
        if path:
            break
    labels, label_reason = templateflow_file(space, extension=".tsv", **entities)
    if labels is None and settings["labels_space"]:
        labels, label_reason = templateflow_file(settings["labels_space"], atlas=settings["atlas"], suffix="dseg",
                                                  extension=".tsv")
    if not path or not labels:
        fetch = f"t.get('{space}', atlas='{settings['atlas']}', desc='{settings['desc']}', suffix='dseg')"
        if settings["labels_space"]:
            fetch += (f"; t.get('{settings['labels_space']}', atlas='{settings['atlas']}', suffix='dseg', "
                      "extension='.tsv')")
        raise MissingInputError(
            f"TemplateFlow has no {atlas} atlas {'image' if not path else 'labels'} for tpl-{space} here "
            f"({reason if not path else label_reason}): prefetch it where there is internet with "
            f"python -c \"import templateflow.api as t; {fetch}\" and set TEMPLATEFLOW_HOME to that folder")
    atlas_img = image.resample_to_img(str(path), reference_img, interpolation="nearest", force_resample=True,
                                      copy_header=True)
    data = np.asarray(atlas_img.dataobj).astype(int)
    table = pd.read_csv(labels, sep="\t")
    offset = 1 if table["index"].min() == 0 else 0  # 0 is the background of a dseg image
    names = dict(zip(table["index"] + offset, table["name"]))
    return {str(names.get(value, value)): data == value for value in np.unique(data) if value != 0}


def lateral_regions(parcels):
    """Pair the left and right parts of atlas regions.

    A parcel's hemisphere is read from a ``LH``/``RH``/``Left``/``Right`` token
    of its name; the region is the name without that token and without a
    trailing parcel number (Schaefer's ``7Networks_LH_Default_Temp_3`` belongs
    to ``7Networks_Default_Temp``), so regions split into several numbered
    parcels are united per hemisphere.

    Returns
    -------
    dict
        ``{region_L: bool mask, region_R: bool mask}`` for regions found in
        both hemispheres.
    """
    regions = {}
    for name, mask in parcels.items():
        match = HEMISPHERE_TOKEN.search(name)
        if not match:
            continue
        hemi = "L" if match.group(1) in ("LH", "Left") else "R"
        base = re.sub(r"_\d+$", "", (name[:match.start(1)] + name[match.end(1):]).strip(" _"))
        base = re.sub(r"[^0-9A-Za-z]+", "", base.title()) if " " in base else base.replace("__", "_")
        key = f"{base}_{hemi}"
        regions[key] = regions[key] | mask if key in regions else mask
    return {key: mask for key, mask in regions.items()
            if f"{key[:-2]}_L" in regions and f"{key[:-2]}_R" in regions}
