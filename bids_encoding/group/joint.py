"""Joint models at the group level (``--joint-model``, docs/joint.md).

Per joint model and space: the one-sample t maps of the participants' unique and split R² (FDR as for r,
:func:`~bids_encoding.group.second_level.one_sample_t`), in template spaces the left-minus-right map and t map of
the unique R²; a table per participant, joint model and space (whole mask, hemispheres and ROIs); and the scaling
of the language model's unique R² over its size, across joint models that share their other spaces.
"""

import numpy as np
import pandas as pd

from bids_encoding.group.scaling import FIT_COLUMNS, scaling_table
from bids_encoding.group.scores import roi_sides
from bids_encoding.group.second_level import nanmean, one_sample_t, t_masks
from bids_encoding.hemispheres import hemisphere_scores, mirror_difference

# The per-space maps the group level reads, and the table column of each.
SPACE_STATS = {"uniquer2": "unique_r2", "splitr": "split_r", "splitr2": "split_r2"}
COLUMNS = ["participant", "model", "space", "space_id", "language", "lowlevel", "unique_r2", "split_r",
           "split_r2", "left", "right", "l_minus_r", "model_id", "n_params", "log10_params", "family"]
ROI_COLUMNS = ["participant", "model", "space", "roi", "left", "right", "l_minus_r", "n_voxels_left",
               "n_voxels_right"]
SUMMARY_COLUMNS = ["model", "space", "space_id", "language", "n_participants", "unique_r2", "unique_r2_sem",
                   "split_r", "split_r_sem", "split_r2", "split_r2_sem", "l_minus_r", "l_minus_r_sem"]
SCALING_MEASURES = ("unique_r2", "split_r2")


def joint_models(results):
    """The joint models of the participants, from their sidecars.

    Parameters
    ----------
    results : list of ParticipantResult

    Returns
    -------
    dict
        ``{model label: {"spaces": [space label, ...], "ids": {label: id}, "language": label or None,
        "lowlevel": "id+id" (the other spaces), "model": the sidecar's Model}}``.
    """
    models = {}
    for result in results:
        for label, sidecar in result.joint_sidecars.items():
            if label in models:
                continue
            spaces = sidecar["JointModel"]["Spaces"]
            language = [space["Label"] for space in spaces if "Layer" in space]
            models[label] = {"spaces": [space["Label"] for space in spaces],
                             "ids": {space["Label"]: space["Id"] for space in spaces},
                             "language": language[0] if len(language) == 1 else None,
                             "lowlevel": "+".join(sorted(space["Id"] for space in spaces if "Layer" not in space)),
                             "model": sidecar["Model"]}
    return models


def joint_scores(results, models, mask, left, mirror):
    """One row per participant, joint model and space: the means over ``mask`` of the space's unique R², split r
    and split R², and the unique R² on the left, on the right (mirror voxels) and L - R.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`; ``n_params`` and ``log10_params`` are the joint model's language model's.
    """
    rows = []
    for result in results:
        for label in result.joint:
            about = models[label]
            n_params = about["model"].get("NumberOfParameters")
            for space in about["spaces"]:
                row = {"participant": f"sub-{result.subject}", "model": label, "space": space,
                       "space_id": about["ids"][space], "language": space == about["language"],
                       "lowlevel": about["lowlevel"], "model_id": about["model"]["Id"], "n_params": n_params,
                       "log10_params": np.log10(n_params) if n_params else np.nan,
                       "family": about["model"].get("Type") or about["model"].get("Label")}
                for stat, column in SPACE_STATS.items():
                    values = result.joint_map(label, space, stat)
                    row[column] = float(np.nanmean(values[mask])) if values is not None else np.nan
                unique = result.joint_map(label, space, "uniquer2")
                sides = hemisphere_scores(unique, left, mirror) if unique is not None else {}
                row.update({key: sides.get(key, np.nan) for key in ("left", "right", "l_minus_r")})
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def joint_summary(scores):
    """One row per joint model and space: the number of participants, and the mean and standard error over them
    of the unique R², split r and split R² (the group report's table)."""
    rows = []
    for (model, space), subset in scores.groupby(["model", "space"], sort=False):
        row = {"model": model, "space": space, "space_id": subset["space_id"].iloc[0],
               "language": bool(subset["language"].iloc[0]), "n_participants": int(subset["participant"].nunique())}
        for column in ("unique_r2", "split_r", "split_r2", "l_minus_r"):
            values = subset[column].dropna()
            row[column] = float(values.mean()) if len(values) else np.nan
            row[f"{column}_sem"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def joint_roi_scores(results, rois, mask):
    """Per participant, joint model, space and ROI: the unique R² on the left, the right and L - R
    (:func:`~bids_encoding.group.scores.roi_sides`)."""
    rows = []
    for result in results:
        for label, maps in result.joint.items():
            for space in sorted({desc for desc, stat in maps if stat == "uniquer2"}):
                rows.extend({"participant": f"sub-{result.subject}", "model": label, "space": space, **row}
                            for row in roi_sides(result.joint_map(label, space, "uniquer2"), rois, mask))
    return pd.DataFrame(rows, columns=ROI_COLUMNS)


def joint_group_maps(output, results, models, geometry, template):
    """Per joint model and space, staged in ``output``: the one-sample t maps of unique R² (``desc-<space>unique``)
    and split R² (``desc-<space>split``), each with its FDR-thresholded map (``...fdr05``); in a template space
    (``template``), the group-mean unique R² minus its mirror image (``desc-<space>LminusR_stat-uniquer2``) and the
    t map of the participants' L - R (``desc-<space>uniqueLminusR``).

    Parameters
    ----------
    geometry : tuple
        ``(mask, left, mirror, affine)``: the symmetric mask, its left voxels, the mirror indices, the affine.
    """
    mask, left, mirror, affine = geometry
    for label, about in models.items():
        members = [r for r in results if label in r.joint]
        mask_img, left_img = t_masks(members, mask, left, mirror, affine)
        for space in about["spaces"]:
            what = f"the {space} space of joint model {label} ({' + '.join(about['spaces'])})"
            maps = {stat: [result.joint_map(label, space, stat) for result in members] for stat in SPACE_STATS}
            unique = [m for m in maps["uniquer2"] if m is not None]
            if template and unique:
                output.image(np.nan_to_num(mirror_difference(nanmean(unique), left, mirror)), affine, "statmap",
                             f"Group-mean unique R² of {what} minus its mirror image (left voxels; right and "
                             "midline 0)", {"JointModel": label, "Space": space}, model=label, desc=f"{space}LminusR",
                             stat="uniquer2")
            if len(members) < 2:
                continue
            for stat, desc, name in (("uniquer2", "unique", "unique R²"), ("splitr2", "split", "split R²")):
                values = [np.where(mask, np.nan_to_num(m), 0.0) for m in maps[stat] if m is not None]
                if len(values) == len(members):
                    one_sample_t(output, values, mask_img, affine, label, f"{space}{desc}",
                                 f"One-sample t of the participants' {name} of {what}")
            if template and len(unique) == len(members):
                one_sample_t(output, [np.nan_to_num(mirror_difference(m, left, mirror)) for m in unique], left_img,
                             affine, label, f"{space}uniqueLminusR",
                             f"One-sample t of the participants' unique R² minus its mirror image, {what}")


def joint_scaling(scores, n_bootstraps):
    """The language model's unique (and split) R² against log10(parameters), across the joint models that have
    the same other spaces and language models of at least two sizes, per participant and for the group
    (:func:`~bids_encoding.group.scaling.scaling_table`: bootstrap CI over participants).

    Returns
    -------
    fits : pandas.DataFrame
        The fits, with ``lowlevel`` (the other spaces) and ``models`` (the joint models that entered).
    entered : dict
        ``{lowlevel: [joint model, ...]}`` of the fits.
    """
    language = scores[scores["language"] & scores["n_params"].notna()]
    fits, entered = [], {}
    for lowlevel, subset in language.groupby("lowlevel"):
        if subset["n_params"].nunique() < 2:
            continue
        models = sorted(subset["model"].unique())
        fit = scaling_table(subset, list(SCALING_MEASURES), ["log10_params"], n_bootstraps)
        fit = fit[fit["family"] == "all"]
        fits.append(fit.assign(lowlevel=lowlevel, models="+".join(models)))
        entered[lowlevel] = models
    columns = FIT_COLUMNS + ["lowlevel", "models"]
    return (pd.concat(fits, ignore_index=True) if fits else pd.DataFrame(columns=columns)), entered
