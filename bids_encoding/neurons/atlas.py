"""Functional network atlases: Yeo's 7 or 17 networks as Schaefer et al.'s (2018) parcellations through
TemplateFlow, or a user's atlas (a NIfTI of labels and a TSV naming them), on a participant's voxels."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_encoding.errors import MissingInputError, UsageError
from bids_encoding.hemispheres import SYNTHETIC_SPACES, in_templateflow

# Schaefer parcellations keep Yeo's networks in their parcel names (``7Networks_LH_Vis_1``); 400 parcels is
# the resolution TemplateFlow ships for both network counts
NETWORK_ATLASES = {"Schaefer7": "400Parcels7Networks", "Schaefer17": "400Parcels17Networks"}
SCHAEFER_NETWORK = re.compile(r"^\d+Networks_(?:LH|RH)_([A-Za-z]+)")
SYNTHETIC_TEMPLATE = "MNI152NLin2009cAsym"  # the demo's DemoMNI grid is laid out as this template


@dataclass
class NetworkAtlas:
    """Each voxel's network on a participant's mask (``labels``, 0: none) and the networks' names."""

    labels: np.ndarray
    names: dict
    record: dict


def _user_atlas(path):
    image = Path(path)
    table = image.with_name(image.name.removesuffix(".gz").removesuffix(".nii") + ".tsv")
    if not image.is_file() or not table.is_file():
        raise MissingInputError(f"--network-atlas {path}: give a NIfTI of network labels with a TSV of the same "
                                f"name next to it ({table.name}: columns index, name), or one of "
                                f"{', '.join(NETWORK_ATLASES)}")
    return image, table, {"Source": "file", "Image": str(image), "Labels": str(table)}


def _templateflow_atlas(atlas, space):
    from bids_encoding.hemispheres import templateflow_file

    template = SYNTHETIC_TEMPLATE if space in SYNTHETIC_SPACES else space
    if not in_templateflow(template):
        raise UsageError(f"--network-atlas {atlas} needs the outputs in a TemplateFlow template space (--space), "
                         f"not space-{space}: give an atlas on the data's grid as --network-atlas FILE.nii.gz")
    entities = {"atlas": "Schaefer2018", "desc": NETWORK_ATLASES[atlas], "suffix": "dseg"}
    image = None
    for resolution in (2, 1, None):
        image, reason = templateflow_file(template, resolution=resolution, extension=".nii.gz", **entities)
        if image:
            break
    table, table_reason = templateflow_file(template, extension=".tsv", **entities)
    if not image or not table:
        fetch = (f"t.get('{template}', atlas='Schaefer2018', desc='{NETWORK_ATLASES[atlas]}', suffix='dseg')")
        raise MissingInputError(f"TemplateFlow has no {atlas} atlas {'image' if not image else 'labels'} for "
                                f"tpl-{template} here ({reason if not image else table_reason}): prefetch it where "
                                f"there is internet with python -c \"import templateflow.api as t; {fetch}\" and set "
                                "TEMPLATEFLOW_HOME to that folder")
    return Path(image), Path(table), {"Source": "TemplateFlow", "Template": template, "Atlas": "Schaefer2018",
                                      "Description": NETWORK_ATLASES[atlas], "Image": Path(image).name}


def network_atlas(atlas, space, mask_img):
    """The networks of ``atlas`` on the voxels of ``mask_img``.

    Parameters
    ----------
    atlas : str
        ``Schaefer7`` or ``Schaefer17`` (TemplateFlow, in the outputs' template), or the path of a NIfTI of
        integer labels with a TSV of the same name (columns ``index``, ``name``: one network per label).
    space : str
    mask_img : nibabel image

    Returns
    -------
    NetworkAtlas
    """
    import pandas as pd
    from nilearn import image as nimage

    if atlas in NETWORK_ATLASES:
        image, table, record = _templateflow_atlas(atlas, space)
    else:
        image, table, record = _user_atlas(atlas)
    resampled = nimage.resample_to_img(str(image), mask_img, interpolation="nearest", force_resample=True,
                                       copy_header=True)
    values = np.asarray(resampled.dataobj).astype(int)[np.asarray(mask_img.dataobj) > 0]
    rows = pd.read_csv(table, sep="\t")
    if not {"index", "name"} <= set(rows.columns):
        raise MissingInputError(f"{table}: the labels table needs the columns index and name")
    network_of = {}
    for index, name in zip(rows["index"], rows["name"]):
        match = SCHAEFER_NETWORK.match(str(name))
        network_of[int(index)] = match.group(1) if match else str(name)
    networks = sorted(set(network_of.values()))
    number = {network: k + 1 for k, network in enumerate(networks)}
    labels = np.array([number[network_of[v]] if v in network_of else 0 for v in values], dtype=int)
    names = {number[network]: network for network in networks if (labels == number[network]).any()}
    if not names:
        raise MissingInputError(f"{image}: no network of the atlas falls inside the brain mask; is the atlas in "
                                f"the space of the data (space-{space})?")
    return NetworkAtlas(labels, names, {**record, "Networks": [names[k] for k in sorted(names)]})


def check_atlas(atlas, spaces):
    """Fail early (before any fit) when ``atlas`` cannot be had for the outputs' ``spaces``."""
    for space in sorted(set(spaces)):
        if atlas in NETWORK_ATLASES:
            _templateflow_atlas(atlas, space)
        else:
            _user_atlas(atlas)
