"""The cortical surface, for the participant and group levels and the reports: fsaverage5 (its meshes ship inside
nilearn, so nothing is downloaded), which volume spaces project onto it, the projection of a volume map (nilearn's
``vol_to_surf``), and GIFTI files. fMRIPrep's own surface BOLD is found by :mod:`bids_encoding.inputs.derivatives`
and read by :mod:`bids_encoding.inputs.bold`.

fsaverage is aligned to MNI305; maps in the MNI152 templates (and the demo's MNI-like grid) are projected onto it
as they are, as nilearn, NeuroVault and LITcoder do: the two MNI spaces differ by a few millimetres.
"""

from functools import lru_cache

import nibabel as nib
import numpy as np

from bids_encoding.hemispheres import SYNTHETIC_SPACES

SURFACE_SPACE = "fsaverage5"
HEMIS = {"L": "left", "R": "right"}
# Vertices per hemisphere of each fsaverage density. The icosahedral meshes are nested: fsaverage5's vertices are
# the first 10242 of fsaverage6's and of fsaverage's, so a denser map is brought to fsaverage5 by keeping those.
DENSITIES = {"fsaverage5": 10242, "fsaverage6": 40962, "fsaverage": 163842}
N_VERTICES = DENSITIES[SURFACE_SPACE]
PROJECTION = {"Method": "nilearn.surface.vol_to_surf", "Kind": "depth",
              "Meshes": "fsaverage5 white and pial surfaces (shipped with nilearn)",
              "Samples": "along the line from the white to the pial surface, voxels outside the brain mask left out; "
                         "n/a (NaN) where no sample is inside it",
              "Note": "the MNI152 volume is taken as fsaverage's MNI305 space (they differ by a few mm)"}
_STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}


def projectable(space):
    """Whether maps in volume ``space`` can be projected onto fsaverage5: an MNI template or the demo's MNI-like
    grid."""
    return space in SYNTHETIC_SPACES or str(space).startswith(("MNI152", "MNI305", "MNIColin27"))


@lru_cache(maxsize=1)
def fsaverage5():
    """fsaverage5's meshes (``pial``, ``white_matter``, ``inflated``, ``flat``, ...) and its sulcal depth, as
    nilearn ships them: ``(meshes, {"L": sulc, "R": sulc})``."""
    from nilearn import datasets

    meshes = datasets.load_fsaverage(SURFACE_SPACE)
    sulc = datasets.load_fsaverage_data(mesh=SURFACE_SPACE, data_type="sulcal")
    return meshes, {hemi: np.asarray(sulc.data.parts[part]) for hemi, part in HEMIS.items()}


def mesh(kind, hemi):
    """One hemisphere's fsaverage5 mesh of ``kind`` (``pial``, ``white_matter``, ``inflated``, ``flat``)."""
    return fsaverage5()[0][kind].parts[HEMIS[hemi]]


def project(img, mask_img=None, interpolation="linear"):
    """A volume map on fsaverage5: ``{"L": (10242,), "R": (10242,)}``.

    Parameters
    ----------
    img : Niimg
        A 3D map in an MNI space (:func:`projectable`).
    mask_img : Niimg or None
        Voxels outside it are not sampled; a vertex with no sample inside it is NaN.
    interpolation : str
        ``linear``; ``thresholded`` for a thresholded map: linear, and 0 where most samples are 0 (no value made
        up past the threshold's edge); ``nearest_most_frequent`` for a label image (ROIs, planted regions).
    """
    import warnings

    from nilearn import image, surface

    if interpolation != "linear":
        img = _covering(img)
    projected = {}
    for hemi in HEMIS:
        with warnings.catch_warnings():  # a vertex with no sample inside the mask is NaN, as documented
            warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
            labels = interpolation == "nearest_most_frequent"  # nilearn's fails on a vertex with no sample in a mask
            values = surface.vol_to_surf(img, mesh("pial", hemi), inner_mesh=mesh("white_matter", hemi),
                                         kind=PROJECTION["Kind"], mask_img=None if labels else mask_img,
                                         interpolation="linear" if interpolation == "thresholded" else interpolation)
            if interpolation == "thresholded":
                kept = _covering(image.new_img_like(img, (np.asarray(img.dataobj) != 0).astype(np.int16),
                                                    copy_header=False))
                inside = surface.vol_to_surf(kept, mesh("pial", hemi), inner_mesh=mesh("white_matter", hemi),
                                             kind=PROJECTION["Kind"], interpolation="nearest_most_frequent")
                values = np.where(np.nan_to_num(inside) > 0, values, 0.0)
        projected[hemi] = np.asarray(values, dtype=np.float32)
    return projected


def _covering(img):
    """``img`` padded with 0 so that its grid covers fsaverage5's white and pial surfaces: nilearn's
    ``nearest_most_frequent`` (0.14) fails on a vertex whose samples all fall outside the image."""
    points = np.vstack([mesh(kind, hemi).coordinates for kind in ("pial", "white_matter") for hemi in HEMIS])
    ijk = nib.affines.apply_affine(np.linalg.inv(img.affine), points)
    shape = np.array(img.shape[:3])
    low = np.minimum(np.floor(ijk.min(axis=0)).astype(int) - 1, 0)
    high = np.maximum(np.ceil(ijk.max(axis=0)).astype(int) + 2, shape)
    if not low.any() and (high == shape).all():
        return img
    data = np.zeros(tuple(high - low), dtype=np.asarray(img.dataobj).dtype)
    data[tuple(slice(-start, -start + size) for start, size in zip(low, shape))] = np.asarray(img.dataobj)
    return nib.Nifti1Image(data, img.affine @ nib.affines.from_matvec(np.eye(3), low))


def sphere_labels(centres, radius):
    """Vertices of fsaverage5's pial surface within ``radius`` mm of each centre (MNI mm, left hemisphere): label
    k + 1 for the k-th centre on the left, and on the right for the mirrored centre. ``{"L": ints, "R": ints}``."""
    labelled = {}
    for hemi, sign in (("L", 1.0), ("R", -1.0)):
        coordinates = mesh("pial", hemi).coordinates
        values = np.zeros(len(coordinates), dtype=np.int16)
        for index, (x, y, z) in enumerate(centres):
            inside = np.linalg.norm(coordinates - np.array([sign * x, y, z]), axis=1) <= radius
            values[inside & (values == 0)] = index + 1
        labelled[hemi] = values
    return labelled


def write_gifti(values, hemi, path, label_names=None):
    """One hemisphere's values as GIFTI (``.func.gii``; with ``label_names`` ``{label: name}``, a ``.label.gii``
    with its label table)."""
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": _STRUCTURES[hemi]})
    if label_names is None:
        array = nib.gifti.GiftiDataArray(np.asarray(values, dtype=np.float32), intent="NIFTI_INTENT_ESTIMATE",
                                         datatype="NIFTI_TYPE_FLOAT32")
        image = nib.gifti.GiftiImage(darrays=[array], meta=meta)
    else:
        table = nib.gifti.GiftiLabelTable()
        for key, name in {0: "unknown", **label_names}.items():
            label = nib.gifti.GiftiLabel(key=int(key))
            label.label = name
            table.labels.append(label)
        array = nib.gifti.GiftiDataArray(np.asarray(values, dtype=np.int32), intent="NIFTI_INTENT_LABEL",
                                         datatype="NIFTI_TYPE_INT32")
        image = nib.gifti.GiftiImage(darrays=[array], meta=meta, labeltable=table)
    nib.save(image, str(path))


def read_gifti(path):
    """The values of a GIFTI file: ``(n_vertices,)`` for one array, ``(n_arrays, n_vertices)`` for several (a
    surface time series: one array per volume)."""
    image = nib.load(str(path))
    arrays = [np.asarray(array.data) for array in image.darrays]
    return arrays[0] if len(arrays) == 1 else np.stack(arrays)


def label_names(path):
    """``{label: name}`` of a ``.label.gii`` file (0, unknown, left out)."""
    return {label.key: label.label for label in nib.load(str(path)).labeltable.labels if label.key != 0}


def split_hemispheres(values):
    """``{"L": values[:10242], "R": values[10242:]}`` of values over both hemispheres' vertices, left first."""
    values = np.asarray(values)
    return {"L": values[:N_VERTICES], "R": values[N_VERTICES:]}
