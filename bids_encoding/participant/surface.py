"""A participant's maps on the cortical surface (fsaverage5, GIFTI): fitted on fMRIPrep's own surface BOLD where
every run has it (``--surface auto``), else projected from the volume maps of an MNI space (nilearn
``vol_to_surf``); none in other spaces (one line says why)."""

import logging

import nibabel as nib
import numpy as np

from bids_encoding.derivatives.names import DerivativeName
from bids_encoding.derivatives.sidecars import bids_uri
from bids_encoding.inputs.bold import clean_surface_bold
from bids_encoding.inputs.derivatives import surface_bold
from bids_encoding.participant.preparation import Participant, noise_ceiling
from bids_encoding.surface import N_VERTICES, PROJECTION, SURFACE_SPACE, project, projectable, split_hemispheres

LOGGER = logging.getLogger(__name__)


def on_surface(name):
    """Whether a participant map also goes onto the surface: each model's best-layer r, a joint model's r and its
    spaces' split r and unique R², the noise ceiling."""
    if name.suffix != "statmap":
        return False
    joint = name.model is not None and name.layer is None
    return (name.layer == "best" and name.stat == "r") or (joint and name.stat in ("r", "splitr", "uniquer2")) \
        or name.stat == "ccmax"


class SurfaceMaps:
    """Where a fit on fMRIPrep's surface BOLD writes: the maps :func:`on_surface` picks, as GIFTI beside the volume
    maps, through the participant's own output (committed with it)."""

    def __init__(self, output, record):
        self.output, self.record = output, record

    def write_map(self, values, sidecar, dtype=np.float32, **entities):
        if on_surface(self.output.name("statmap", ".nii.gz", **entities)):
            self.output.write_surface(split_hemispheres(np.asarray(values, dtype=dtype)),
                                      {**sidecar, "Surface": self.record}, **entities)


def surface_bold_runs(runs, config):
    """``(found, reason)``: each run's fMRIPrep surface BOLD (``[(space, {"L": path, "R": path}), ...]``) when the
    runs are fitted on it (``--surface auto``, every run has it, no procedure resamples or smooths the volume), else
    ``None`` and why (``""`` where there is nothing to say)."""
    if config.surface != "auto":
        return None, ""
    found = [surface_bold(run.bold_path) for run in runs]
    if not all(found):
        return None, (f"fMRIPrep surface BOLD for {sum(map(bool, found))} of {len(found)} runs: the volume maps are "
                      f"projected onto {SURFACE_SPACE} instead") if any(found) else ""
    if config.cleaning.grid is not None or config.cleaning.smoothing_fwhm:
        return None, (f"--procedure {config.procedure} resamples or smooths the volume BOLD: its maps are projected "
                      f"onto {SURFACE_SPACE} rather than fitted on fMRIPrep's surface BOLD")
    return found, ""


def surface_member(participant, config, sequence):
    """The participant's fMRIPrep surface BOLD as another member of its batch (fitted with the same design and
    ridge), or ``None`` where it is not used: ``--surface`` other than ``auto``, an average participant, a run
    without both hemispheres in an fsaverage density, or a procedure that resamples or smooths the volume."""
    if participant.average_of is not None:
        return None
    found, reason = surface_bold_runs(participant.runs, config)
    if found is None:
        if reason:
            LOGGER.warning("sub-%s: %s", participant.subject, reason)
        return None
    trim = (config.design.trim_start, config.design.trim_end)
    responses = [clean_surface_bold(paths, space, run.repetition_time, trim, config.cleaning,
                                    confounds=run.confounds) for run, (space, paths) in zip(participant.runs, found)]
    spaces = sorted({space for space, _ in found})
    record = {"Source": "fMRIPrep surface BOLD, fitted with the same design, cleaning and ridge as the volume",
              "Space": SURFACE_SPACE,
              "Bold": [bids_uri(path, config.bids_dir) for _, paths in found for path in paths.values()],
              **({"Decimation": f"the first {N_VERTICES} vertices of {', '.join(spaces)} (fsaverage5's, which the "
                                "icosahedral meshes share)"} if spaces != [SURFACE_SPACE] else {})}
    LOGGER.info("sub-%s: fitted on fMRIPrep's surface BOLD too (%s, %d vertices)", participant.subject,
                ", ".join(spaces), responses[0].shape[1])
    return Participant(participant.subject, participant.task, participant.runs, responses,
                       SurfaceMaps(participant.output, record), None, participant.mask,
                       ceiling=noise_ceiling(participant.subject, responses, sequence), on_surface=True)


def project_maps(output, config):
    """Project the participant's staged volume maps that :func:`on_surface` picks and that have no surface
    version yet (a fit on surface BOLD writes its own) onto fsaverage5, in an MNI space; else one line."""
    if config.surface == "none":
        return
    if not projectable(output.space):
        LOGGER.info("sub-%s: space %s is not an MNI space: no maps on the cortical surface (fsaverage5 is aligned "
                    "to MNI; give BOLD in an MNI space, or fMRIPrep's fsaverage surfaces)", output.subject,
                    output.space)
        return
    done = {DerivativeName.parse(relative.name).with_(hemi=None, space=output.space, extension=".nii.gz")
            for relative in output.files if "_hemi-" in relative.name}
    for name, relative, sidecar, entities in output.staged_maps():
        if not on_surface(name) or name in done:
            continue
        record = {"Source": "the volume map projected", "Space": SURFACE_SPACE,
                  "Volume": f"bids::{relative.as_posix()}", **PROJECTION}
        output.write_surface(project(nib.load(output.staging / relative), output.mask_img),
                             {**sidecar, "Surface": record}, **entities)
