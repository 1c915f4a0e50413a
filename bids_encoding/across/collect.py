"""The datasets of the ``datasets`` level: each one's participant results, on one template grid.

Each dataset is an output folder of this app (its participant level run, in a template space). Its participants'
best-layer maps are read as Fisher-z r on the grid of the first dataset (nilearn ``resample_to_img`` where a grid
differs); a participant with several tasks takes the mean of their maps.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_encoding.derivatives.neurovault import dataset_source
from bids_encoding.errors import BadDataError, MissingInputError
from bids_encoding.group.collect import collect, model_table
from bids_encoding.hemispheres import is_template_space

LOGGER = logging.getLogger(__name__)


@dataclass
class DatasetResults:
    """One dataset's participants, on the common grid.

    Attributes
    ----------
    name : str
    folder : Path
        The app's output folder of the dataset.
    results : list of ParticipantResult
    models : pandas.DataFrame
        :func:`~bids_encoding.group.collect.model_table` of its participants.
    resampled : bool
        Its maps were resampled to the common grid.
    source : dict
        The raw dataset's name and DOI (from the dataset_description.json its outputs link to).
    """

    name: str
    folder: Path
    results: list
    models: object
    resampled: bool = False
    source: dict = field(default_factory=dict)
    _best: dict = field(default_factory=dict, repr=False)

    @property
    def subjects(self):
        return sorted({result.subject for result in self.results})

    @property
    def tasks(self):
        return sorted({result.task for result in self.results})

    def z_maps(self, label, reference, read=None, fisher=True):
        """``(n_participants, *grid)``: each participant's Fisher-z map of model ``label`` (``read(result)``:
        the map to read, or ``None`` where it has none; default its best-layer r, read once and kept;
        ``fisher=False``: the values as read, e.g. R²), NaN outside its mask; several tasks averaged. ``None`` when
        no participant has one."""
        if read is None and label in self._best:
            return self._best[label]
        per_subject = {}
        for result in self.results:
            if read is None:
                values = result.r_map(label) if label in result.best_r else None
            else:
                values = read(result)
            if values is None:
                continue
            image = nib.Nifti1Image(np.asarray(values, dtype=np.float32), nib.load(result.mask_path).affine)
            values = _on_grid(image, reference, "continuous")
            values = np.arctanh(np.clip(values, -0.999, 0.999)) if fisher else values
            per_subject.setdefault(result.subject, []).append(values)
        maps = np.stack([np.nanmean(maps, axis=0) if len(maps) > 1 else maps[0]
                         for _, maps in sorted(per_subject.items())]) if per_subject else None
        if read is None:
            self._best[label] = maps
        return maps


def _on_grid(image, reference, interpolation):
    """``image``'s data on ``reference``'s grid (resampled with nilearn where the grids differ)."""
    if image.shape[:3] == reference.shape[:3] and np.allclose(image.affine, reference.affine):
        return np.asarray(image.dataobj, dtype=float)
    from nilearn.image import resample_to_img

    return np.asarray(resample_to_img(image, reference, interpolation=interpolation, force_resample=True,
                                      copy_header=True).dataobj, dtype=float)


def find_datasets(root, names=None):
    """The output folders of this app in ``root`` (each immediate subfolder whose dataset_description.json says
    bids_encoding made it), or those ``names`` picks (subfolder names, or paths). Returns ``{name: folder}``."""
    root = Path(root)
    if names:
        folders = {Path(name).name: (Path(name) if Path(name).is_dir() else root / name) for name in names}
    else:
        folders = {path.name: path for path in sorted(root.iterdir()) if path.is_dir() and _made_here(path)} \
            if root.is_dir() else {}
    for folder in folders.values():
        if not _made_here(folder):
            raise MissingInputError(f"{folder} is no output folder of bids_encoding (its dataset_description.json "
                                    "does not say so): give the folders the participant level wrote")
    if len(folders) < 2:
        raise MissingInputError(f"the datasets level combines at least 2 datasets; found {len(folders)} in {root} "
                                "(one output folder of bids_encoding per dataset, or --datasets NAME ...)")
    return folders


def _made_here(folder):
    try:
        description = json.loads((Path(folder) / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return False
    return any(entry.get("Name") == "bids_encoding" for entry in description.get("GeneratedBy", []))


def read_datasets(folders):
    """Each dataset's participant results, checked to share one template space; returns ``(datasets, space,
    reference image)`` (the grid of the first dataset's first brain mask)."""
    datasets, spaces = [], {}
    for name, folder in folders.items():
        results = [result for result in collect(folder) if not result.is_average]
        space = {result.space for result in results}
        if len(space) > 1:
            raise BadDataError(f"{folder} holds results in several spaces ({', '.join(sorted(space))}): give one "
                               "output folder per space")
        spaces[name] = space.pop()
        datasets.append(DatasetResults(name, Path(folder), results, model_table(results),
                                       source=dataset_source(folder)))
    for name, space in spaces.items():
        if not is_template_space(space):
            raise BadDataError(f"dataset {name} ({folders[name]}) is in space-{space}, not a template space: the "
                               "datasets level combines maps in one template space (rerun it with --space, e.g. "
                               "MNI152NLin2009cAsym)")
    if len(set(spaces.values())) > 1:
        listed = ", ".join(f"{name}: space-{space}" for name, space in spaces.items())
        raise BadDataError(f"the datasets are in different template spaces ({listed}): this level resamples grids "
                           "but cannot align templates; rerun them in one space (--space)")
    reference = nib.load(datasets[0].results[0].mask_path)
    for dataset in datasets:
        mask = nib.load(dataset.results[0].mask_path)
        dataset.resampled = mask.shape[:3] != reference.shape[:3] or not np.allclose(mask.affine, reference.affine)
        if dataset.resampled:
            LOGGER.info("dataset %s: maps resampled from its grid to %s's", dataset.name, datasets[0].name)
    return datasets, next(iter(spaces.values())), reference


def common_mask(datasets, reference, min_participants=2):
    """The voxels where every dataset has at least ``min_participants`` participants' masks."""
    mask = np.ones(reference.shape[:3], dtype=bool)
    for dataset in datasets:
        count = np.zeros(reference.shape[:3])
        for subject in dataset.subjects:
            result = next(r for r in dataset.results if r.subject == subject)
            count += _on_grid(nib.load(result.mask_path), reference, "nearest") > 0
        mask &= count >= min_participants
    return mask
