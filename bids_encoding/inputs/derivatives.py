"""Preprocessed BOLD found beside the raw data: ``derivatives/sub-*/`` (as Le Petit Prince ships it, without
a dataset_description.json, which pybids would need) or ``derivatives/<pipeline>/sub-*/`` (fMRIPrep).

When a participant has preprocessed BOLD, the raw BOLD is not used.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)
_WARNED = set()  # derivative folders already warned about in this process
PATTERNS = ("derivatives/sub-{subject}/**/*_desc-preproc_bold.nii*",
            "derivatives/*/sub-{subject}/**/*_desc-preproc_bold.nii*")


@dataclass
class BoldFile:
    """A BOLD file outside the pybids index, with the part of pybids' ``BIDSFile`` the run selection uses."""

    path: str
    entities: dict

    def get_entities(self, metadata=False):
        return dict(self.entities)


def preprocessed_bold(bids_dir, subject, task=None, space=None):
    """The participant's preprocessed BOLD files (``desc-preproc``), filtered by task and space."""
    from bids.layout import parse_file_entities

    found = {}
    for pattern in PATTERNS:
        for path in sorted(Path(bids_dir).glob(pattern.format(subject=subject))):
            entities = parse_file_entities(str(path))
            if entities.get("datatype", "func") != "func" or entities.get("subject") != subject:
                continue
            if (task and entities.get("task") != task) or (space and entities.get("space") != space):
                continue
            found.setdefault(str(path), BoldFile(str(path), entities))
    roots = {_pipeline_root(Path(f.path), bids_dir) for f in found.values()}
    for root in sorted(roots - _WARNED):
        _WARNED.add(root)
        if not (root / "dataset_description.json").is_file():
            LOGGER.warning("%s has no dataset_description.json: its preprocessed BOLD is used all the same "
                           "(found by file name)", root)
    return list(found.values())


def _pipeline_root(path, bids_dir):
    derivatives = Path(bids_dir) / "derivatives"
    first = path.relative_to(derivatives).parts[0]
    return derivatives if first.startswith("sub-") else derivatives / first
