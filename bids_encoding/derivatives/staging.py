"""BIDS-Derivatives writing: dataset_description, staged files with their sidecars, atomic commit.

Statistical maps follow the de-facto ``stat-<name>_statmap`` convention
(fitlins, nilearn); the ``model`` and ``layer`` entities are this project's
own, as BIDS has no standard for such maps yet (BEP041 is a proposal).
"""

import json
import os
import platform
import shutil
import uuid
from importlib import metadata
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import masking

from bids_encoding import __version__
from bids_encoding.derivatives.names import DerivativeName
from bids_encoding.errors import BidsAppError, EXIT_CANNOT_CREATE

BIDS_VERSION = "1.10.0"
CODE_URL = "https://github.com/bids-encoding/bids_encoding"
BIDSIGNORE = ["logs/", "work/", "*.html", "figures/"]


def software_versions():
    """Versions of the packages whose code shapes the results."""
    versions = {"bids_encoding": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "torch", "transformers", "tokenizers", "nilearn", "nibabel", "pybids"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_dataset_description(output_dir, bids_dir):
    """Write ``dataset_description.json`` and ``.bidsignore`` if they are missing."""
    output_dir = Path(output_dir)
    path = output_dir / "dataset_description.json"
    source = {}
    source_path = Path(bids_dir) / "dataset_description.json"
    if source_path.is_file():
        try:
            source = json.loads(source_path.read_text(encoding="utf-8-sig"))
        except ValueError:
            source = {}
    description = {
        "Name": f"bids_encoding: language-model encoding of {source.get('Name', Path(bids_dir).name)}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "bids_encoding", "Version": __version__, "CodeURL": CODE_URL}],
        "SourceDatasets": [{key: value for key, value in
                            (("URL", Path(bids_dir).resolve().as_uri()),
                             ("DOI", source.get("DatasetDOI")),
                             ("Version", source.get("DatasetVersion"))) if value}],
    }
    if source.get("License"):
        description["License"] = source["License"]
    if path.is_file():
        return
    _atomic_write_text(path, json.dumps(description, indent=2))
    ignore = output_dir / ".bidsignore"
    if not ignore.is_file():
        _atomic_write_text(ignore, "\n".join(BIDSIGNORE) + "\n")


def _atomic_write_text(path, text):
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def derivative_name(subject, task, space, suffix, extension, **entities):
    """BIDS file name from entities in canonical order (:class:`~bids_encoding.derivatives.names.DerivativeName`).

    >>> derivative_name("01", "story", "orig", "statmap", ".nii.gz", model="gpt2", layer="3", stat="r")
    'sub-01_task-story_space-orig_model-gpt2_layer-3_stat-r_statmap.nii.gz'
    """
    return str(DerivativeName(suffix=suffix, extension=extension, sub=subject, task=task, space=space,
                              **{key: value for key, value in entities.items() if value is not None}))


class ParticipantOutput:
    """Writes one participant's files into a staging folder, then commits them.

    Nothing under ``sub-<label>/`` is replaced until :meth:`commit`; the
    scores table, written last, marks a complete result.
    """

    def __init__(self, output_dir, subject, task, space, mask_img):
        self.output_dir = Path(output_dir)
        self.subject, self.task, self.space = subject, task, space
        self.mask_img = mask_img
        self.staging = self.output_dir / f".staging-sub-{subject}-task-{task}-{uuid.uuid4().hex[:8]}"
        self.func = Path(f"sub-{subject}") / "func"
        try:
            (self.staging / self.func).mkdir(parents=True)
        except OSError as error:
            raise BidsAppError(f"cannot create {self.staging}: {error}", EXIT_CANNOT_CREATE) from error
        self.files = []

    def name(self, suffix, extension, **entities):
        return derivative_name(self.subject, self.task, self.space, suffix, extension, **entities)

    def _write_sidecar(self, name, sidecar):
        sidecar_name = str(DerivativeName.parse(name).sidecar)
        (self.staging / self.func / sidecar_name).write_text(json.dumps(sidecar, indent=2, default=_jsonable))
        self.files.append(self.func / sidecar_name)

    def write_map(self, values, sidecar, dtype=np.float32, **entities):
        """Write a map over the mask's voxels as NIfTI, with a JSON sidecar."""
        name = self.name("statmap", ".nii.gz", **entities)
        image = masking.unmask(np.asarray(values, dtype=dtype), self.mask_img)
        image.header.set_data_dtype(dtype)
        image.to_filename(self.staging / self.func / name)
        self.files.append(self.func / name)
        self._write_sidecar(name, sidecar)
        return self.func / name

    def write_mask(self, sidecar):
        name = self.name("mask", ".nii.gz", desc="brain")
        image = nib.Nifti1Image(np.asarray(self.mask_img.dataobj).astype(np.uint8), self.mask_img.affine)
        image.to_filename(self.staging / self.func / name)
        self.files.append(self.func / name)
        self._write_sidecar(name, sidecar)

    def write_scores(self, rows):
        name = derivative_name(self.subject, self.task, self.space, "scores", ".tsv")
        pd.DataFrame(rows).to_csv(self.staging / self.func / name, sep="\t", index=False, na_rep="n/a")
        self.files.append(self.func / name)

    def commit(self):
        """Move the staged files into place, the scores table last."""
        destination = self.output_dir / self.func
        destination.mkdir(parents=True, exist_ok=True)
        for relative in sorted(self.files, key=lambda path: path.name.endswith("_scores.tsv")):
            os.replace(self.staging / relative, self.output_dir / relative)
        shutil.rmtree(self.staging, ignore_errors=True)

    def discard(self):
        shutil.rmtree(self.staging, ignore_errors=True)


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value)} to JSON")
