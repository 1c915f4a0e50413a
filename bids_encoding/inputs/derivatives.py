"""Preprocessed BOLD and what comes with it: found in derivative folders by file name.

Where (in this order): the folders given with ``--derivatives``, else every
``derivatives/<pipeline>/`` of the dataset that holds ``sub-*`` folders
(fMRIPrep), else ``derivatives/`` itself when it holds ``sub-*`` folders (as
Le Petit Prince ships its preprocessed BOLD, without the
dataset_description.json pybids would need to index it).

What: ``sub-<label>/[ses-<label>/]func/*_desc-preproc_bold.nii[.gz]`` (every
fMRIPrep generation: ``_space-<s>[_res-<r>]_desc-preproc_bold``), beside it
the run's brain mask (the same name with ``_desc-brain_mask``) and, read by
nilearn's ``load_confounds``, its confounds (``_desc-confounds_timeseries.tsv``,
or ``_desc-confounds_regressors.tsv`` before fMRIPrep 20.2).

When a participant has preprocessed BOLD, the raw BOLD is not used.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bids_encoding.errors import MissingInputError
from bids_encoding.surface import DENSITIES, HEMIS

LOGGER = logging.getLogger(__name__)
_WARNED = set()  # derivative folders already warned about in this process
BOLD_PATTERN = "sub-{subject}/**/*_desc-preproc_bold.nii*"


@dataclass
class BoldFile:
    """A BOLD file outside the pybids index, with the part of pybids' ``BIDSFile`` the run selection uses."""

    path: str
    entities: dict

    def get_entities(self, metadata=False):
        return dict(self.entities)


def derivative_roots(bids_dir, given=None):
    """The folders searched for preprocessed BOLD: ``given`` (checked), else those found under
    ``bids_dir/derivatives``."""
    if given:
        roots = [Path(path).resolve() for path in given]
        for root in roots:
            if not root.is_dir():
                raise MissingInputError(f"--derivatives {root} does not exist: give the folder that holds the "
                                        "preprocessed sub-* folders (e.g. derivatives/fmriprep)")
        return roots
    derivatives = Path(bids_dir) / "derivatives"
    if not derivatives.is_dir():
        return []
    pipelines = [folder for folder in sorted(derivatives.iterdir())
                 if folder.is_dir() and not folder.name.startswith("sub-") and any(folder.glob("sub-*"))]
    flat = [derivatives] if any(derivatives.glob("sub-*")) else []
    return pipelines + flat


def preprocessed_bold(roots, subject, task=None, space=None, resolution=None):
    """The participant's preprocessed BOLD files (``desc-preproc``) in ``roots``, filtered by task, space
    and resolution (``res-``)."""
    from bids.layout import parse_file_entities

    found = {}
    for root in roots:
        for path in sorted(Path(root).glob(BOLD_PATTERN.format(subject=subject))):
            entities = parse_file_entities(str(path))
            if entities.get("datatype", "func") != "func" or entities.get("subject") != subject:
                continue
            if (task and entities.get("task") != task) or (space and entities.get("space") != space):
                continue
            if resolution and str(entities.get("res", "")) != str(resolution):
                continue
            found.setdefault(str(path), BoldFile(str(path), entities))
            _warn_without_description(Path(root))
    return list(found.values())


def _warn_without_description(root):
    if root in _WARNED:
        return
    _WARNED.add(root)
    if not (root / "dataset_description.json").is_file():
        LOGGER.warning("%s has no dataset_description.json: its preprocessed BOLD is used all the same "
                       "(found by file name)", root)


def run_brain_mask(bold_path):
    """The derivative's brain mask of one preprocessed run (``_desc-brain_mask`` beside it), or None."""
    name = Path(bold_path).name
    for extension in (".nii.gz", ".nii"):
        if name.endswith("_desc-preproc_bold" + extension):
            candidate = Path(bold_path).with_name(name.replace("_desc-preproc_bold" + extension,
                                                               "_desc-brain_mask.nii.gz"))
            return candidate if candidate.is_file() else None
    return None


# fMRIPrep's surface BOLD beside its volume BOLD, in each generation's naming: ``_hemi-L_space-fsaverage5_bold``
# (20.2 and later), ``_space-fsaverage5_hemi-L_bold`` and ``_space-fsaverage6_hemi-L`` (1.2 to 20.1; the
# Narratives dataset), ``_bold_space-fsaverage5.L`` (before 1.2).
_SURFACE_BOLD = re.compile(r"_(?:hemi-(?P<h1>[LR])_)?(?:bold_)?space-(?P<space>fsaverage\d?)(?:_hemi-(?P<h2>[LR]))?"
                           r"(?:_bold)?(?:\.(?P<h3>[LR]))?\.func\.gii$")


def surface_bold(bold_path):
    """fMRIPrep's surface BOLD of the run whose volume BOLD is ``bold_path``: ``(space, {"L": path, "R": path})``
    in the sparsest fsaverage density at least as dense as fsaverage5, or ``None``."""
    bold_path = Path(bold_path)
    run = re.split(r"_(?:space|desc|res)-", bold_path.name)[0]
    found = {}
    for path in bold_path.parent.glob(f"{run}_*.func.gii"):
        match = _SURFACE_BOLD.fullmatch(path.name[len(run):])
        hemi = match and (match["h1"] or match["h2"] or match["h3"])
        if hemi and match["space"] in DENSITIES:
            found.setdefault(match["space"], {})[hemi] = path
    complete = [space for space in sorted(found, key=DENSITIES.get) if len(found[space]) == 2]
    return (complete[0], {hemi: found[complete[0]][hemi] for hemi in HEMIS}) if complete else None
