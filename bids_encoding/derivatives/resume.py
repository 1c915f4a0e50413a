"""Reruns: skip the participant × model results that are complete and still valid, and keep every finished
model × layer fit of a run that was stopped (killed by the scheduler, out of time) for the next run.

A result is *valid* when its fingerprint (``FitRecord.fingerprint``, :mod:`bids_encoding.participant.record`), a
hash of everything that shapes it (the model and feature
settings, the stimuli and their timings, the BOLD files as found on disk, the design, cleaning, confounds,
ridge and significance settings, and the computation versions of the stages that compute it:
:func:`computation_versions`), equals the one the rerun computes. The package's full version is recorded
beside it but not compared: a release that changes no stage's numbers keeps the results (docs/usage.md). The
fingerprints of the committed models are recorded in the scores table's sidecar; those of unfinished fits
name their checkpoint folders in ``WORK_DIR/fits/``.
"""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from bids_encoding import __version__
from bids_encoding.atomic import atomic_write
from bids_encoding.derivatives.names import DerivativeName
from bids_encoding.ridge.layers import LayerFit

LOGGER = logging.getLogger(__name__)


def file_state(path):
    """Path, size and modification time: a file replaced or rewritten changes the fingerprint."""
    if path is None:
        return None
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return str(path)
    return [str(path), stat.st_size, stat.st_mtime_ns]


def computation_versions():
    """The computation version of each stage, which its code bumps when its numbers change for the same
    settings (``FEATURE_CODE_VERSION`` and the like).

    Returns
    -------
    dict
        ``{"Features", "Design", "Ridge", "Significance", "Neurons"}`` -> int.
    """
    from bids_encoding.design import settings as design
    from bids_encoding.features import engine as features
    from bids_encoding.neurons import settings as neurons
    from bids_encoding.ridge import significance, solver

    return {"Features": features.FEATURE_CODE_VERSION, "Design": design.DESIGN_CODE_VERSION,
            "Ridge": solver.RIDGE_CODE_VERSION, "Significance": significance.SIGNIFICANCE_CODE_VERSION,
            "Neurons": neurons.NEURONS_CODE_VERSION}


def scores_sidecar_path(output_dir, subject, task, space):
    name = DerivativeName(suffix="scores", extension=".json", sub=subject, task=task, space=space)
    return Path(output_dir) / f"sub-{subject}" / "func" / str(name)


def committed_fits(output_dir, subject, task, space):
    """The models of a committed participant result: ``{label: {"Fingerprint", "Version", ...}}``; empty when
    there is no complete result (no scores table) or when it predates fingerprints."""
    sidecar = scores_sidecar_path(output_dir, subject, task, space)
    if not sidecar.with_suffix("").with_suffix(".tsv").is_file() or not sidecar.is_file():
        return {}
    try:
        return dict(json.loads(sidecar.read_text()).get("Fits", {}))
    except (OSError, ValueError):
        return {}


def scores_fit_entry(fingerprint, model_id):
    """What the scores sidecar's ``Fits`` records of one committed model."""
    return {"Fingerprint": fingerprint, "Version": __version__, "ComputationVersions": computation_versions(),
            "ModelId": model_id}


def reusable_models(committed, fingerprints, subject, task, output_dir):
    """Which of ``fingerprints`` (``{label: fingerprint}``) the committed result (:func:`committed_fits`)
    already holds; one warning naming the models computed by other code (another computation version of a
    stage), which are fitted again.

    Returns
    -------
    set of str
    """
    current = computation_versions()
    changed = {}
    for label in fingerprints:
        record = committed.get(label)
        if record is None:
            continue
        before = record.get("ComputationVersions")
        if before is None:
            changed[label] = f"bids_encoding {record.get('Version', 'unknown')}, before computation versions"
        elif before != current:
            changed[label] = ", ".join(f"{stage} {before.get(stage)} -> {version}"
                                       for stage, version in current.items() if before.get(stage) != version)
    if changed:
        LOGGER.warning("sub-%s task-%s: the results in %s of %s were computed by other code (%s; this is "
                       "bids_encoding %s): fitting again", subject, task, output_dir, ", ".join(sorted(changed)),
                       "; ".join(sorted(set(changed.values()))), __version__)
    return {label for label, fingerprint in fingerprints.items()
            if label not in changed and committed.get(label, {}).get("Fingerprint") == fingerprint}


class LayerCheckpoint:
    """The finished layer fits of one model for participants fitted together, in ``WORK_DIR/fits/<key>/``.

    After each layer, that layer's per-voxel results (``layer-<n>.npz``) and then the running best-layer
    state (``best.npz``, listing the layers it includes) are written atomically; a rerun with the same
    fingerprints takes every layer that ``best.npz`` lists from here instead of fitting it again.
    Removed once the participants' results are committed (or, when the run stopped between the two, by
    :func:`remove_committed_checkpoints` in the next run).

    Parameters
    ----------
    work_dir : Path
    owners : list of (subject, task, fingerprint)
        The participants fitted together and their fit fingerprints for this model.
    """

    def __init__(self, work_dir, owners):
        self.owners = [list(owner) for owner in owners]
        key = hashlib.sha256(json.dumps(self.owners).encode()).hexdigest()[:16]
        self.folder = Path(work_dir) / "fits" / key

    def _write(self, name, arrays):
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "owners.json").write_text(json.dumps(self.owners))
        atomic_write(self.folder / f"{name}.npz",
                     lambda temporary: np.savez(temporary, **{key: value for key, value in arrays.items()
                                                              if value is not None}), suffix=".npz")

    def save(self, layer, fit, best, done):
        """Record ``layer``'s fit (a :class:`~bids_encoding.ridge.layers.LayerFit`), then the best-layer state
        after it (:meth:`BestLayer.state`) with the layers ``done`` so far."""
        self._write(f"layer-{layer}", fit.arrays())
        self._write("best", {**best, "done": np.asarray(done, dtype=np.int64)})

    def load(self):
        """``(layers, best)``: ``{layer: LayerFit}`` of the finished layers and the best-layer state, or
        ``({}, None)`` when nothing usable is there."""
        path = self.folder / "best.npz"
        if not path.is_file():
            return {}, None
        try:
            with np.load(path) as stored:
                best = {key: stored[key] for key in stored.files}
            layers = {}
            for layer in best.pop("done").tolist():  # ints, as the layers are
                with np.load(self.folder / f"layer-{layer}.npz") as stored:
                    layers[layer] = LayerFit.from_arrays({key: stored[key] for key in stored.files})
        except (OSError, ValueError, KeyError) as error:
            LOGGER.warning("unreadable fit checkpoint %s (%s): fitting its layers again", self.folder, error)
            return {}, None
        return layers, best

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_committed_checkpoints(work_dir, subject, task, fingerprint):
    """Remove the checkpoints of fits that include a result now committed (a run stopped after committing
    but before removing them)."""
    for owners in Path(work_dir).glob("fits/*/owners.json"):
        try:
            committed = [subject, task, fingerprint] in json.loads(owners.read_text())
        except (OSError, ValueError):
            continue
        if committed:
            shutil.rmtree(owners.parent, ignore_errors=True)
