"""Collect the participant outputs of an output folder into tidy tables, and check they belong together."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_encoding.derivatives.names import AVERAGE_LABEL, DerivativeName, find, find_participants, joint_model_maps
from bids_encoding.errors import BadDataError, MissingInputError

# Sidecar sections that must match across participants for their results to be compared.
SHARED_SETTINGS = ("Features", "Design", "Cleaning", "Confounds")
RIDGE_SETTINGS = ("Alphas", "AlphaChoice", "AlphaScore", "OuterCV", "InnerCV", "Score")


@dataclass
class ParticipantResult:
    """One participant's outputs for one task."""

    subject: str
    task: str
    space: str
    scores: pd.DataFrame
    mask_path: Path
    best_r: dict = field(default_factory=dict)  # model label -> best-layer r map path
    best_layer_maps: dict = field(default_factory=dict)  # model label -> chosen-layer map path (or None)
    sidecars: dict = field(default_factory=dict)  # model label -> sidecar of the best-layer r map
    ceiling_path: Path = None  # CC_max map, when the participant heard repeated stimuli
    joint: dict = field(default_factory=dict)  # joint model label -> {(desc, stat): map path} (desc: the space)
    joint_sidecars: dict = field(default_factory=dict)  # joint model label -> sidecar of its stat-r map
    data_scaling: dict = field(default_factory=dict)  # model label -> its _datascaling.tsv (--data-scaling)
    _r_maps: dict = field(default_factory=dict, repr=False)

    @property
    def is_average(self):
        return self.subject == AVERAGE_LABEL

    @property
    def own_mask(self):
        """The participant's own brain mask (bool, on the grid)."""
        if "_mask" not in self._r_maps:
            self._r_maps["_mask"] = np.asarray(nib.load(self.mask_path).dataobj) > 0
        return self._r_maps["_mask"]

    def r_map(self, label):
        """The best-layer r map of model ``label``, NaN outside the participant's own mask (read once, then
        kept: every group step uses it)."""
        if label not in self._r_maps:
            values = np.asarray(nib.load(self.best_r[label]).dataobj, dtype=float)
            self._r_maps[label] = np.where(self.own_mask, values, np.nan)
        return self._r_maps[label]

    def joint_map(self, model, space, stat):
        """A joint model's map of one space (``stat``: ``uniquer2``, ``splitr``, ``splitr2``), NaN outside the
        participant's own mask; ``None`` when the participant has none."""
        key = (model, space, stat)
        path = self.joint.get(model, {}).get((space, stat))
        if path is None:
            return None
        if key not in self._r_maps:
            values = np.asarray(nib.load(path).dataobj, dtype=float)
            self._r_maps[key] = np.where(self.own_mask, values, np.nan)
        return self._r_maps[key]


def collect(output_dir, task=None, participant_labels=None):
    """Every participant's scores table, mask and best-layer maps in ``output_dir``, found by their names
    (:mod:`bids_encoding.derivatives.names`); only ``participant_labels``' (without ``sub-``) when given.

    Returns
    -------
    list of ParticipantResult
    """
    output_dir = Path(output_dir)
    wanted = set(participant_labels or [])
    results = []
    for scores_name, table in find_participants(output_dir, suffix="scores", extension=".tsv").items():
        if (task and scores_name.task != task) or (wanted and scores_name.sub not in wanted):
            continue
        files = find(table.parent, sub=scores_name.sub, task=scores_name.task, space=scores_name.space)
        mask = scores_name.with_(desc="brain", suffix="mask", extension=".nii.gz")
        result = ParticipantResult(scores_name.sub, scores_name.task, scores_name.space,
                                   pd.read_csv(table, sep="\t"), files.get(mask, table.parent / str(mask)))
        result.ceiling_path = files.get(scores_name.with_(stat="ccmax", suffix="statmap", extension=".nii.gz"))
        for name, path in files.items():
            if (name.layer, name.stat, name.suffix, name.extension) == ("best", "r", "statmap", ".nii.gz"):
                result.best_r[name.model] = path
                result.best_layer_maps[name.model] = files.get(name.with_(stat="layer"))
                result.sidecars[name.model] = json.loads(sidecar_of(path).read_text())
            if (name.suffix, name.extension) == ("datascaling", ".tsv"):
                result.data_scaling[name.model] = path
        for model, maps in joint_model_maps(files).items():
            result.joint[model] = maps
            result.joint_sidecars[model] = json.loads(sidecar_of(maps[(None, "r")]).read_text())
        results.append(result)
    if not results:
        raise MissingInputError(
            f"no participant results in {output_dir}: run 'bids_encoding BIDS_DIR {output_dir} participant' first")
    return results


def sidecar_of(path):
    """The JSON sidecar of a derivative file."""
    return path.with_name(str(DerivativeName.parse(path.name).sidecar))


def check_consistency(results):
    """Raise a one-line error naming what differs between participants."""
    reference = results[0]
    reference_mask = nib.load(reference.mask_path)
    for result in results[1:]:
        if result.space != reference.space:
            raise BadDataError(f"sub-{result.subject} is in space-{result.space}, sub-{reference.subject} in "
                               f"space-{reference.space}: the group level needs one space")
        mask = nib.load(result.mask_path)
        if mask.shape != reference_mask.shape or not np.allclose(mask.affine, reference_mask.affine):
            raise BadDataError(f"{result.mask_path} and {reference.mask_path} are on different grids: "
                               "resample the BOLD data to one template grid")
        for label, sidecar in result.sidecars.items():
            other = reference.sidecars.get(label)
            if other is None:
                continue
            sections = SHARED_SETTINGS if result.is_average or reference.is_average else SHARED_SETTINGS + ("BOLD",)
            for section in sections:
                if _comparable(sidecar, section) != _comparable(other, section):
                    raise BadDataError(f"model {label}: {section} settings differ between sub-{result.subject} and "
                                       f"sub-{reference.subject} ({result.best_r[label].name}): rerun them alike")
            for key in RIDGE_SETTINGS:
                if sidecar["Ridge"].get(key) != other["Ridge"].get(key):
                    raise BadDataError(f"model {label}: Ridge {key} differs between sub-{result.subject} and "
                                       f"sub-{reference.subject}: rerun them alike")
            mine, theirs = sidecar.get("SoftwareVersions", {}), other.get("SoftwareVersions", {})
            for package in sorted(set(mine) | set(theirs)):
                if mine.get(package) != theirs.get(package):
                    raise BadDataError(f"sub-{result.subject} was analysed with {package} {mine.get(package)}, sub-"
                                       f"{reference.subject} with {theirs.get(package)} "
                                       f"({result.best_r[label].name}): rerun them with one environment "
                                       "(one container image)")
        _check_joint(result, reference)


def _check_joint(result, reference):
    """A joint model must have the same spaces and settings for every participant (the layers each outer fold
    chose may differ)."""
    for label, sidecar in result.joint_sidecars.items():
        other = reference.joint_sidecars.get(label)
        if other is not None and _joint_setup(sidecar) != _joint_setup(other):
            raise BadDataError(f"joint model {label}: its spaces or settings differ between sub-{result.subject} "
                               f"and sub-{reference.subject} (JointModel in the sidecars): rerun them alike")


def _joint_setup(sidecar):
    record = dict(sidecar.get("JointModel", {}))
    record["Spaces"] = [{key: value for key, value in space.items() if key != "Layer"}
                        for space in record.get("Spaces", [])]
    return record


def _comparable(sidecar, section):
    """A sidecar section as compared across participants: of the brain mask, only its kind of source."""
    value = sidecar.get(section)
    if section == "BOLD" and isinstance(value, dict) and isinstance(value.get("Mask"), dict):
        value = {**value, "Mask": value["Mask"].get("Source")}
    return value


def model_table(results):
    """One row per model: label, id, parameters, layers, hidden size, family (its architecture), modality
    (``speech`` for speech models, whose sidecars record ``Features.Speech``; else ``language``), whether it is a
    baseline."""
    rows = {}
    for result in results:
        for label, sidecar in result.sidecars.items():
            model = sidecar["Model"]
            rows[label] = {"model": label, "model_id": model["Id"], "n_params": model["NumberOfParameters"],
                           "n_layers": model["NumberOfLayers"], "hidden_size": model["HiddenSize"],
                           "family": model.get("Type") or model["Label"],
                           "modality": "speech" if (sidecar.get("Features") or {}).get("Speech") else "language",
                           "baseline": bool(model.get("Untrained")) or model["Source"] == "baseline"}
    return pd.DataFrame(list(rows.values()))
