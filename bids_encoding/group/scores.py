"""Per participant and model scores on the symmetric mask, per ROI and per atlas parcel (best-layer maps)."""

import nibabel as nib
import numpy as np
import pandas as pd

from bids_encoding.group.scaling import fit_line
from bids_encoding.hemispheres import hemisphere_scores, symmetric_subset

# Columns of the tables whose rows may be none (they are written with their header all the same).
PARCEL_COLUMNS = ["participant", "model", "roi", "mean_r", "n_voxels"]
ROI_COLUMNS = ["participant", "model", "roi", "left", "right", "l_minus_r", "n_voxels_left", "n_voxels_right"]
ROIFIT_COLUMNS = ["roi", "r_lminusr_log10_params", "slope", "mean_l_minus_r"]
MEASURES = ("mean_r", "mean_r_reliable", "mean_r_top10", "left", "right", "l_minus_r", "left_reliable",
            "right_reliable", "l_minus_r_reliable")


def participant_scores(results, models, mask, left, mirror, reliable):
    """One row per participant and model, on the symmetric mask (best-layer maps)."""
    rows = []
    inside = mask.ravel()
    reliable_left = symmetric_subset(reliable, left, mirror) if reliable is not None else None

    def reliable_sides(r_map):
        if reliable_left is None or not reliable_left.any():
            return {"left_reliable": float("nan"), "right_reliable": float("nan"),
                    "l_minus_r_reliable": float("nan")}
        sides = hemisphere_scores(r_map, reliable_left, mirror)
        return {"left_reliable": sides["left"], "right_reliable": sides["right"],
                "l_minus_r_reliable": sides["l_minus_r"]}

    for result in results:
        for label in result.best_r:
            r_map = result.r_map(label)
            values = r_map.ravel()[inside]
            layer_path = result.best_layer_maps.get(label)
            layers = np.asarray(nib.load(layer_path).dataobj).ravel()[inside] if layer_path else None
            rows.append({
                "participant": f"sub-{result.subject}", "model": label,
                "mean_r": float(np.nanmean(values)),
                "mean_r_reliable": float(np.nanmean(r_map[reliable])) if reliable is not None else float("nan"),
                "mean_r_top10": _participant_measure(result, label, "mean_r_top10"),
                "best_layer": float(np.median(layers)) if layers is not None else float("nan"),
                **hemisphere_scores(r_map, left, mirror), **reliable_sides(r_map)})
    table = pd.DataFrame(rows).merge(models, on="model")
    table["log10_params"] = np.log10(table["n_params"].where(table["n_params"] > 0))
    return table


SUMMARY_MEASURES = ("mean_r", "left", "right", "l_minus_r", "mean_r_reliable", "l_minus_r_reliable")


def model_summary(scores):
    """One row per model: its size, the number of participants, and the mean and standard error over
    participants of each measure (the group report's table of models and baselines)."""
    rows = []
    for model, subset in scores.groupby("model", sort=False):
        row = {"model": model, "model_id": subset["model_id"].iloc[0], "n_params": subset["n_params"].iloc[0],
               "baseline": bool(subset["baseline"].iloc[0]), "n_participants": int(subset["participant"].nunique()),
               "modality": subset["modality"].iloc[0] if "modality" in subset else "language"}
        for measure in SUMMARY_MEASURES:
            values = subset[measure].dropna()
            row[measure] = float(values.mean()) if len(values) else float("nan")
            row[f"{measure}_sem"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 \
                else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["baseline", "n_params"]).reset_index(drop=True)


def _participant_measure(result, label, column):
    """A best-layer measure from the participant's own scores table (n/a when it has none)."""
    table = result.scores
    if column not in table.columns:
        return float("nan")
    rows = table[(table["model"] == label) & (table["layer"].astype(str) == "best")]
    return float(rows[column].iloc[0]) if not rows.empty else float("nan")


def parcel_scores(results, parcels, mask):
    """Mean best-layer r per participant, model and parcel (inside ``mask``)."""
    rows = []
    for result in results:
        for label in result.best_r:
            r_map = result.r_map(label)
            rows.extend({"participant": f"sub-{result.subject}", "model": label, "roi": name,
                         "mean_r": float(np.nanmean(r_map[parcel & mask])), "n_voxels": int((parcel & mask).sum())}
                        for name, parcel in parcels.items() if (parcel & mask).any())
    return pd.DataFrame(rows, columns=PARCEL_COLUMNS)


def roi_scores(results, rois, mask):
    """Left, right and L - R best-layer r per participant, model and ROI (``rois``: ``{name_L, name_R: mask}``)."""
    return pd.DataFrame([{"participant": f"sub-{result.subject}", "model": label, **row}
                         for result in results for label in result.best_r
                         for row in roi_sides(result.r_map(label), rois, mask)], columns=ROI_COLUMNS)


def roi_sides(values, rois, mask):
    """Per ROI found on both sides inside ``mask``: the mean of ``values`` on the left, on the right, L - R and
    the voxel counts, as rows (dicts with ``roi``)."""
    rows = []
    for name in sorted({key.rsplit("_", 1)[0] for key in rois}):
        left, right = rois[f"{name}_L"] & mask, rois[f"{name}_R"] & mask
        if not left.any() or not right.any():
            continue
        left_r, right_r = float(np.nanmean(values[left])), float(np.nanmean(values[right]))
        rows.append({"roi": name, "left": left_r, "right": right_r, "l_minus_r": left_r - right_r,
                     "n_voxels_left": int(left.sum()), "n_voxels_right": int(right.sum())})
    return rows


def roi_scaling(roi_table, models):
    rows = []
    if roi_table.empty:
        return pd.DataFrame(columns=ROIFIT_COLUMNS)
    trained = models[~models["baseline"]].set_index("model")
    for roi, subset in roi_table[roi_table["model"].isin(trained.index)].groupby("roi"):
        mean = subset.groupby("model")["l_minus_r"].mean()
        x = np.log10(trained.loc[mean.index, "n_params"].astype(float))
        if len(np.unique(x)) < 2:
            continue
        slope, _ = fit_line(x, mean.values)
        rows.append({"roi": roi, "r_lminusr_log10_params": float(np.corrcoef(x, mean.values)[0, 1]),
                     "slope": slope, "mean_l_minus_r": float(mean.mean())})
    return pd.DataFrame(rows, columns=ROIFIT_COLUMNS)


