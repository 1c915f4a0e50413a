"""Inter-subject correlation of the participants' BOLD, cleaned as their participant level recorded it.

The ceiling must come from the same preprocessing as the maps it is compared
with, so everything is read from the participant sidecars: the runs (BOLD
file, TR, scans, stimulus), the trimming and the cleaning. Nothing comes from
the group command's own options, and the participant orchestrator is not
involved.
"""

import json
import logging
from functools import partial

import nibabel as nib
import numpy as np

from bids_encoding.derivatives.names import find
from bids_encoding.design.cleaning import Cleaning
from bids_encoding.inputs.bold import clean_run_bold
from bids_encoding.ridge.ceiling import split_half_ceiling

LOGGER = logging.getLogger(__name__)


def recorded_runs(result):
    """``(runs, trim_start, trim_end, cleaning)`` from a participant's sidecars; ``None`` when not recorded."""
    sidecar = next(iter(result.sidecars.values()), None)
    if not sidecar or "Runs" not in sidecar or "Cleaning" not in sidecar:
        return None
    design = sidecar.get("Design", {})
    return (sidecar["Runs"], int(design.get("trim_start", 0)), int(design.get("trim_end", 0)),
            Cleaning.from_record(sidecar["Cleaning"]))


def cached_runs(result, runs, trim_start, trim_end, cleaning, mask):
    """The participant's cleaned BOLD kept by ``--isc-cache``, on the voxels of ``mask``, as one reader per run;
    ``None`` unless it is the data that reading the BOLD would give (the same runs, trimming and cleaning, no
    confounds regressed, and every voxel of ``mask`` in the participant's mask)."""
    folder = result.mask_path.parent.parent / "cache"
    records = list(find(folder, sub=result.subject, task=result.task, desc="isc", suffix="bold",
                        extension=".json").values())
    if not records:
        return None
    try:
        record = json.loads(records[0].read_text())
        same = (record.get("Bold") == [run["Bold"] for run in runs]
                and record.get("TrimScans") == [trim_start, trim_end]
                and Cleaning.from_record(record["Cleaning"]) == cleaning and not record.get("Confounds")
                and all((folder / name).is_file() for name in record["Files"]))
    except (ValueError, KeyError, TypeError) as error:
        LOGGER.warning("sub-%s: %s is not a readable ISC cache (%s); reading the BOLD", result.subject, records[0],
                       error)
        return None
    own = result.own_mask
    if not same or own.shape != mask.shape or not own[mask].all():
        LOGGER.info("sub-%s: the cached cleaned BOLD does not match the group's reading of it; reading the BOLD",
                    result.subject)
        return None
    columns = (np.cumsum(own.ravel()) - 1)[mask.ravel()]
    return [partial(_cached_columns, folder / name, columns) for name in record["Files"]]


def _cached_columns(path, columns):
    return np.load(path, mmap_mode="r")[:, columns]


def inter_subject_correlation(bids_dir, results, mask, affine):
    """Split-half ISC on ``mask`` over the largest set of participants who heard the same runs, or ``None``.

    Returns
    -------
    isc : numpy.ndarray ``(n_mask_voxels,)`` or None
    settings : dict or None
        What was used: participants, trimming and cleaning (for the sidecar).
    """
    if len(results) < 2:
        return None, None
    by_stimuli = {}
    for result in results:
        recorded = recorded_runs(result)
        if recorded is None:
            LOGGER.warning("sub-%s: its sidecars do not record its runs and cleaning (results of an older "
                           "version): no inter-subject correlation", result.subject)
            return None, None
        runs, trim_start, trim_end, cleaning = recorded
        # the audio must start at the same scan time too (Narratives' onsets differ between participants)
        signature = (tuple((run["Stimulus"], run["NumberOfScans"], run["RepetitionTime"],
                            run.get("Words", {}).get("Origin", 0.0)) for run in runs),
                     trim_start, trim_end, cleaning)
        by_stimuli.setdefault(signature, []).append((result, runs))
    (_, trim_start, trim_end, cleaning), members = max(by_stimuli.items(), key=lambda item: len(item[1]))
    if len(members) < 2:
        return None, None
    missing = [run["Bold"] for _, runs in members for run in runs if not (bids_dir / run["Bold"]).is_file()]
    if missing:
        LOGGER.warning("no inter-subject correlation: %s is not in %s (give the BIDS dataset the participant "
                       "level read)", missing[0], bids_dir)
        return None, None
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    responses, sources = [], []
    for result, runs in members:
        cached = cached_runs(result, runs, trim_start, trim_end, cleaning, mask)
        sources.append("cache" if cached else "BOLD")
        responses.append(cached or [partial(clean_run_bold, bids_dir / run["Bold"], mask_img, run["RepetitionTime"],
                                            (trim_start, trim_end), cleaning) for run in runs])
    settings = {"Participants": [f"sub-{result.subject}" for result, _ in members],
                "TrimScans": [trim_start, trim_end], "Cleaning": cleaning.record(),
                "SettingsFrom": "the participants' sidecars",
                "ReadFrom": {f"sub-{result.subject}": source for (result, _), source in zip(members, sources)}}
    return split_half_ceiling(responses), settings  # reads each run once, when needed
