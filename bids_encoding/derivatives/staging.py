"""BIDS-Derivatives writing: dataset_description, staged files with their sidecars, atomic commit.

Statistical maps follow the de-facto ``stat-<name>_statmap`` convention
(fitlins, nilearn); the ``model`` and ``layer`` entities are this project's
own, as BIDS has no standard for such maps yet (BEP041 is a proposal).
"""

import json
import os
import platform
import shutil
import socket
import uuid
from importlib import metadata
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import masking

from bids_encoding import __version__
from bids_encoding.atomic import atomic_write
from bids_encoding.derivatives.names import DerivativeName
from bids_encoding.errors import EXIT_CANNOT_CREATE, BidsAppError
from bids_encoding.surface import HEMIS, SURFACE_SPACE, write_gifti

BIDS_VERSION = "1.10.0"
CODE_URL = "https://github.com/bids-encoding/bids_encoding"
AUTHORS = ["The bids_encoding developers"]
# What BIDS does not define (yet), as the BIDS validator reads .bidsignore: "/x" at the root only, "x" at any depth;
# a pattern ending in "/" would leave the folder itself reported. docs/outputs.md lists each with its status. logs/
# is not listed: the validator skips it by default.
BIDSIGNORE = {
    "/work": "pybids index and feature cache (app-specific)",
    "*.html": "reports (app-specific, as fMRIPrep's)",
    "figures": "report figures, sub-<p>/figures and group/figures (app-specific, as fMRIPrep's)",
    "/group": "group-level results: BIDS defines no place for results across participants",
    "/datasets": "the datasets level: results across datasets (app-specific)",
    "/neurovault": "--neurovault: maps and metadata ready for a NeuroVault upload (app-specific)",
    "*_statmap.nii.gz": "statistical maps: stat-<label>_statmap of BEP041 (statistical model derivatives, a "
                        "proposal), with this app's model- and layer- entities",
    "*_statmap.json": "their sidecars",
    "*_statmap.func.gii": "the same maps on the cortical surface (hemi-, space-fsaverage5: GIFTI)",
    "*_scores.tsv": "per-participant score tables (app-specific)",
    "*_scores.json": "their sidecars",
    "*_datascaling.tsv": "--data-scaling: held-out scores per training subset (app-specific)",
    "*_datascaling.json": "their sidecars",
    "*_desc-neurons_*": "neuron patterns: time series, assignments and networks with the model- entity "
                        "(app-specific)",
    "/sub-*/cache": "--isc-cache: cleaned BOLD as .npy for the group's ISC (app-specific)",
    "/words.tsv": "the words level's summary table (app-specific)",
    "*_alignment.tsv": "the words level's transcript alignments (app-specific)",
    "*_alignment.json": "their sidecars",
    "/words.json": "its sidecar",
}
STANDARD_SPACES = (  # BIDS's standard template identifiers (the validator's _StandardTemplateCoordSys)
    "ICBM452AirSpace", "ICBM452Warp5Space", "IXI549Space", "fsaverage", "fsaverageSym", "fsLR", "MNIColin27",
    "MNI152Lin", "MNI152NLin2009aSym", "MNI152NLin2009bSym", "MNI152NLin2009cSym", "MNI152NLin2009aAsym",
    "MNI152NLin2009bAsym", "MNI152NLin2009cAsym", "MNI152NLin6Sym", "MNI152NLin6Asym", "MNI305", "NIHPD",
    "OASIS30AntsOASISAnts", "OASIS30Atropos", "Talairach", "UNCInfant")
RAW = "raw"  # the input dataset's name in DatasetLinks and BIDS URIs ("bids:raw:sub-01/...")


def software_versions():
    """Versions of the packages whose code shapes the results."""
    versions = {"bids_encoding": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "torch", "transformers", "tokenizers", "nilearn", "nibabel", "pybids"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def remove_stale_staging(output_dir):
    """Remove the staging folders that processes of this machine left when they were killed (their process
    is gone); returns how many. Folders of other machines are left to their own jobs."""
    removed = 0
    host = socket.gethostname()
    for folder in Path(output_dir).glob(".staging-*"):
        parts = folder.name[len(".staging-"):]
        if not parts.startswith(host + "-"):
            continue
        pid = parts[len(host) + 1:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_dataset_description(output_dir, bids_dir):
    """Write (or bring up to date) ``dataset_description.json``, ``README.md`` and ``.bidsignore``.

    The description names the app's authors, the container image when the app runs in one, and the input dataset
    (``SourceDatasets`` with its DOI and version when it has them; ``DatasetLinks`` name it ``raw`` for the BIDS
    URIs of the sidecars). A ``.bidsignore`` the user extended keeps their lines.
    """
    output_dir = Path(output_dir)
    source = {}
    source_path = Path(bids_dir) / "dataset_description.json"
    if source_path.is_file():
        try:
            source = json.loads(source_path.read_text(encoding="utf-8-sig"))
        except ValueError:
            source = {}
    source = source if isinstance(source, dict) else {}
    generated_by = {"Name": "bids_encoding", "Version": __version__, "CodeURL": CODE_URL,
                    "Description": "voxel-wise encoding models of language-model features"}
    if container := container_record():
        generated_by["Container"] = container
    input_uri = Path(bids_dir).resolve().as_uri()
    doi = source.get("DatasetDOI")
    description = {
        "Name": f"bids_encoding: language-model encoding of {source.get('Name', Path(bids_dir).name)}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "Authors": AUTHORS,
        "GeneratedBy": [generated_by],
        "SourceDatasets": [{key: value for key, value in
                            (("URL", input_uri), ("DOI", _doi_uri(doi) if doi else None),
                             ("Version", source.get("DatasetVersion"))) if value}],
        "DatasetLinks": {RAW: input_uri},
    }
    if source.get("License"):
        description["License"] = source["License"]
    _write_if_changed(output_dir / "dataset_description.json", json.dumps(description, indent=2) + "\n")
    _write_if_changed(output_dir / "README.md", _readme(description, source))
    ignore = output_dir / ".bidsignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    _write_if_changed(ignore, "\n".join(lines + [pattern for pattern in BIDSIGNORE if pattern not in lines]) + "\n")


def container_record():
    """``GeneratedBy.Container`` when the app runs in its container image (set by the Dockerfile, and seen through
    Singularity/Apptainer), else ``None``."""
    tag = os.environ.get("BIDS_ENCODING_CONTAINER_TAG")
    if not tag:
        return None
    for variable, kind in (("APPTAINER_CONTAINER", "apptainer"), ("SINGULARITY_CONTAINER", "singularity")):
        if os.environ.get(variable):
            return {"Type": kind, "Tag": tag, "URI": Path(os.environ[variable]).resolve().as_uri()}
    return {"Type": "docker", "Tag": tag}


def _doi_uri(doi):
    doi = str(doi).strip()
    return doi if doi.startswith(("doi:", "http")) else f"doi:{doi}"


def _readme(description, source):
    links = "\n".join(f"- {key}: {value}" for entry in description["SourceDatasets"] for key, value in entry.items())
    container = description["GeneratedBy"][0].get("Container")
    image = f" in the {container['Type']} image {container['Tag']}" if container else ""
    doi = description["SourceDatasets"][0].get("DOI")
    return README.format(name=description["Name"], version=__version__, code_url=CODE_URL, image=image,
                         source=source.get("Name", "(its dataset_description.json gives no name)"), links=links,
                         doi=f" ({doi})" if doi else "")


README = """# {name}

Written by bids_encoding {version} ({code_url}){image}: how well, and where, language models predict the BOLD
responses of people listening to stories.

## Source dataset

{source}
{links}

## What is here

- `sub-<label>/func/`: per participant, the brain mask of the fit (`desc-brain_mask`), a map per model, layer
  and statistic (`model-<m>_layer-<k>_stat-<s>_statmap.nii.gz`: held-out r, R², alphas, p- and q-values), the
  best layer, and a scores table (`_scores.tsv`). Each map's JSON sidecar records the model, revision, layer,
  context, design, cleaning, confounds, alphas, cross-validation scheme and software versions.
- `group/`: the group level's tables, maps and figures (scaling law, lateralization, ROIs).
- `sub-<label>.html`, `group.html`: the reports.
- `logs/`: each run's log, its effective configuration (`*_config.toml`; rerun it with `--config-file`) and
  the BIDS validator's report on the input.

`.bidsignore` lists what BIDS does not define yet (the statistical maps follow the BEP041 proposal).

## How to cite

`logs/CITATION.md` (also `.html` and `.bib`) holds the methods text of these settings with the references of
the methods and software used. Cite the source dataset as its authors ask{doi}.
"""


def _write_if_changed(path, text):
    if not path.is_file() or path.read_text() != text:
        atomic_write(path, lambda temporary: temporary.write_text(text))


def derivative_name(subject, task, space, suffix, extension, **entities):
    """BIDS file name from entities in canonical order (:class:`~bids_encoding.derivatives.names.DerivativeName`).

    >>> derivative_name("01", "story", "orig", "statmap", ".nii.gz", model="gpt2", layer="3", stat="r")
    'sub-01_task-story_space-orig_model-gpt2_layer-3_stat-r_statmap.nii.gz'
    """
    return str(DerivativeName(suffix=suffix, extension=extension, sub=subject, task=task, space=space,
                              **{key: value for key, value in entities.items() if value is not None}))


class StagedOutput:
    """Files written into a staging folder, moved into place together by :meth:`commit`.

    Both levels write through this class. Nothing in the output folder is
    replaced until the commit, and the commit removes the files of an
    earlier run that carry this output's entities but were not rewritten
    (a model no longer analysed), so that a folder holds one run's results
    only and no partial result passes for a complete one.

    Parameters
    ----------
    output_dir : Path
    folder : str
        Folder of the files inside ``output_dir`` (``sub-01/func``, ``group``).
    entities : dict
        Entities every file name starts with (``sub``, ``task``, ``space``).
    last_suffix : str or None
        Files with this suffix are moved last: their presence marks a complete result.
    """

    def __init__(self, output_dir, folder, entities, last_suffix=None):
        self.output_dir = Path(output_dir)
        self.folder = Path(folder)
        self.entities = {key: value for key, value in entities.items() if value is not None}
        self.last_suffix = last_suffix
        self.prefix = str(DerivativeName(suffix="x", extension="", **self.entities))[:-2]
        # the same output's files on the cortical surface (hemi-L|R, space-fsaverage5)
        self.prefixes = [self.prefix] + ([str(DerivativeName(suffix="x", extension="", **{
            **self.entities, "hemi": hemi, "space": SURFACE_SPACE}))[:-2] for hemi in HEMIS]
            if "space" in self.entities else [])
        unique = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.staging = self.output_dir / f".staging-{unique}-{self.prefix}"
        try:
            (self.staging / self.folder).mkdir(parents=True)
        except OSError as error:
            raise BidsAppError(f"cannot create {self.staging}: {error}", EXIT_CANNOT_CREATE) from error
        self.files = []
        self.cleaned = set()  # more folders whose files of this output's entities the commit removes

    def name(self, suffix, extension, **entities):
        """A :class:`DerivativeName` with this output's entities."""
        return DerivativeName(suffix=suffix, extension=extension, **self.entities,
                              **{key: value for key, value in entities.items() if value is not None})

    def path(self, name, subfolder=None, folder=None):
        """Staging path of a file (a name or :class:`DerivativeName`), recorded for the commit; in this
        output's folder (or ``folder``), in its ``subfolder`` if given."""
        relative = Path(folder or self.folder) / (subfolder or "") / str(name)
        (self.staging / relative).parent.mkdir(parents=True, exist_ok=True)
        self.files.append(relative)
        return self.staging / relative

    def write_surface(self, values, sidecar, suffix="statmap", label_names=None, **entities):
        """A map on fsaverage5 (``values``: ``{"L": ..., "R": ...}``, or one of them) as one GIFTI file per hemisphere
        (``hemi-L|R_space-fsaverage5``; ``.func.gii``, or ``.label.gii`` with ``label_names``), each with its
        sidecar."""
        extension = ".func.gii" if label_names is None else ".label.gii"
        for hemi in (hemi for hemi in HEMIS if hemi in values):
            name = self.name(suffix, extension, **entities).with_(hemi=hemi, space=SURFACE_SPACE)
            write_gifti(values[hemi], hemi, self.path(name), label_names)
            self.write_json(name.sidecar, {**sidecar, "Hemisphere": hemi, "SoftwareVersions": software_versions()})

    def write_json(self, name, content, subfolder=None):
        self.path(name, subfolder).write_text(json.dumps(content, indent=2, default=_jsonable))

    def write_table(self, frame, name, sidecar=None):
        frame.to_csv(self.path(name), sep="\t", index=False, na_rep="n/a")
        if sidecar is not None:
            self.write_json(DerivativeName.parse(str(name)).sidecar, sidecar)

    def write_image(self, image, name, sidecar):
        image.header.set_xyzt_units("mm", "sec")  # BIDS: NIfTI headers carry units
        image.to_filename(self.path(name))
        self.write_json(DerivativeName.parse(str(name)).sidecar, sidecar)

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        """Commit what was staged when the block ends without an error; else (or when the commit fails) discard it:
        nothing partial is ever moved into place."""
        if error_type is not None:
            self.discard()
            return False
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise
        return False

    def staged_maps(self):
        """The staged volume maps (``_statmap.nii.gz``): ``[(DerivativeName, relative path, sidecar, entities)]``,
        ``entities`` those of the name that this output does not set (what :meth:`write_surface` takes)."""
        maps = []
        for relative in list(self.files):
            name = DerivativeName.parse(relative.name)
            if name.hemi or (name.suffix, name.extension) != ("statmap", ".nii.gz"):
                continue
            sidecar = json.loads((self.staging / relative).with_name(str(name.sidecar)).read_text())
            own = {key: value for key, value in name.entities.items() if key not in self.entities}
            maps.append((name, relative, sidecar, own))
        return maps

    def commit(self):
        """Remove the stale files, then move the new ones into place (``last_suffix`` last)."""
        fresh = set(self.files)
        for folder in {self.folder} | {relative.parent for relative in self.files} | self.cleaned:
            for prefix in self.prefixes:
                for old in (self.output_dir / folder).glob(f"{prefix}_*"):
                    if old.is_file() and old.relative_to(self.output_dir) not in fresh:
                        old.unlink()
        for relative in sorted(self.files, key=lambda path: path.name.endswith(f"_{self.last_suffix}.tsv")):
            (self.output_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staging / relative, self.output_dir / relative)
        for folder in self.cleaned:
            if (self.output_dir / folder).is_dir() and not any((self.output_dir / folder).iterdir()):
                (self.output_dir / folder).rmdir()
        shutil.rmtree(self.staging, ignore_errors=True)

    def discard(self):
        shutil.rmtree(self.staging, ignore_errors=True)


class ParticipantOutput(StagedOutput):
    """One participant's maps, mask and scores table under ``sub-<label>/func/``; the scores table, moved
    last, marks a complete result."""

    def __init__(self, output_dir, subject, task, space, mask_img):
        super().__init__(output_dir, Path(f"sub-{subject}") / "func", {"sub": subject, "task": task, "space": space},
                         last_suffix="scores")
        self.subject, self.task, self.space = subject, task, space
        self.mask_img = mask_img

    def write_map(self, values, sidecar, dtype=np.float32, **entities):
        """Write a map over the mask's voxels as NIfTI, with a JSON sidecar."""
        name = self.name("statmap", ".nii.gz", **entities)
        image = masking.unmask(np.asarray(values, dtype=dtype), self.mask_img)
        image.header.set_data_dtype(dtype)
        self.write_image(image, name, sidecar)
        return self.folder / str(name)

    def write_mask(self, sidecar):
        image = nib.Nifti1Image(np.asarray(self.mask_img.dataobj).astype(np.uint8), self.mask_img.affine)
        self.write_image(image, self.name("mask", ".nii.gz", desc="brain"), sidecar)

    def drop_isc_cache(self):
        """A run without ``--isc-cache``: the commit removes a cache an earlier run left (cleaned BOLD of inputs
        that may have changed since)."""
        self.cleaned.add(self.folder.parent / "cache")

    def write_isc_cache(self, responses, runs, record):
        """Each run's cleaned BOLD over the mask's voxels (``.npy``, float32) in ``sub-<label>/cache/``, with a
        JSON that says which runs and which cleaning (read by :mod:`bids_encoding.group.isc`)."""
        folder = self.folder.parent / "cache"
        names = []
        for index, data in enumerate(responses):
            name = str(self.name("bold", ".npy", desc=f"isc{index:02d}"))
            np.save(self.path(name, folder=folder), np.asarray(data, dtype=np.float32))
            names.append(name)
        self.path(self.name("bold", ".json", desc="isc"), folder=folder).write_text(
            json.dumps({**record, "Files": names}, indent=2, default=_jsonable))

    def write_scores(self, rows, fits):
        """The scores table (moved last: it marks the result complete) and its sidecar, which records each
        model's fit fingerprint (:mod:`bids_encoding.derivatives.resume`) for reruns."""
        self.write_table(pd.DataFrame(rows), self.name("scores", ".tsv"), {
            "Description": "Summary scores per model and layer (docs/outputs.md)",
            "Fits": fits, "SoftwareVersions": software_versions()})

    def adopt(self, model_label=None):
        """Keep the committed files of one model (a rerun found them complete and valid): they are linked into
        the staging folder and committed again with the new files. Returns their scores rows. Without a
        model: the files that belong to no model (mask, noise ceiling, figures), and no rows."""
        folder = self.output_dir / self.folder
        if model_label is None:
            figures = self.folder.parent / "figures"
            old_files = [(path, None) for prefix in self.prefixes for path in folder.glob(f"{prefix}_*")
                         if "_model-" not in path.name and not path.name.endswith(("_scores.tsv", "_scores.json"))]
            old_files += [(path, figures) for path in (self.output_dir / figures).glob(f"{self.prefix}_*")]
        else:
            old_files = [(path, None) for prefix in self.prefixes
                         for path in folder.glob(f"{prefix}_model-{model_label}_*")]
        for old, subfolder in sorted(old_files):
            target = self.path(old.name, folder=subfolder)
            try:
                os.link(old, target)
            except OSError:
                shutil.copy2(old, target)
        if model_label is None:
            return []
        table = folder / str(self.name("scores", ".tsv"))
        scores = pd.read_csv(table, sep="\t", keep_default_na=False, na_values=["n/a"])
        return scores[scores["model"] == model_label].to_dict("records")

    def figure(self, suffix="plot", **entities):
        """Staging path of a figure (SVG) in ``sub-<label>/figures/``, as fMRIPrep's."""
        return self.path(self.name(suffix, ".svg", **entities), folder=self.folder.parent / "figures")


class GroupOutput(StagedOutput):
    """The group level's tables, maps and figures of one task under ``group/`` (figures in ``group/figures/``);
    every sidecar records the software versions."""

    def __init__(self, output_dir, task, space):
        super().__init__(output_dir, "group", {"task": task, "space": space})

    def table(self, frame, suffix, description, extra=None, **entities):
        self.write_table(frame, self.name(suffix, ".tsv", **entities),
                         {"Description": description, **(extra or {}), "SoftwareVersions": software_versions()})

    def image(self, data, affine, suffix, description, extra=None, **entities):
        self.write_image(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine),
                         self.name(suffix, ".nii.gz", **entities),
                         {"Description": description, **(extra or {}), "SoftwareVersions": software_versions()})

    def figure(self, suffix="plot", **entities):
        """Staging path of a figure (SVG) in ``figures/``."""
        return self.path(self.name(suffix, ".svg", **entities), "figures")
def _jsonable(value):
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value)} to JSON")
