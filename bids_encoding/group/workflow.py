"""Group level: collect participant results, fit scaling laws, measure lateralization, write tables, maps, figures."""

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_encoding.group.collect import check_consistency, collect, model_table
from bids_encoding.group.isc import inter_subject_correlation
from bids_encoding.hemispheres import (
    hemisphere_scores,
    is_template_space,
    mirror_difference,
    symmetric_mask,
    symmetric_subset,
)
from bids_encoding.group.rois import LANGUAGE_ROIS, atlas_parcels, lateral_regions, read_roi_file, sphere_masks
from bids_encoding.group.scaling import fit_line, multiple_table, scaling_table
from bids_encoding.derivatives import software_versions

LOGGER = logging.getLogger(__name__)
# Columns of the tables whose rows may be none (they are written with their header all the same).
PARCEL_COLUMNS = ["participant", "model", "roi", "mean_r", "n_voxels"]
ROI_COLUMNS = ["participant", "model", "roi", "left", "right", "l_minus_r", "n_voxels_left", "n_voxels_right"]
ROIFIT_COLUMNS = ["roi", "r_lminusr_log10_params", "slope", "mean_l_minus_r"]
MEASURES = ("mean_r", "mean_r_reliable", "mean_r_top10", "left", "right", "l_minus_r", "left_reliable",
            "right_reliable", "l_minus_r_reliable")


class GroupOutput:
    """Files of ``OUTPUT_DIR/group`` written to a staging folder, moved into place when complete."""

    def __init__(self, output_dir, task, space):
        self.root = Path(output_dir) / "group"
        self.staging = Path(output_dir) / f".staging-group-{uuid.uuid4().hex[:8]}"
        (self.staging / "figures").mkdir(parents=True)
        self.prefix = f"task-{task}_space-{space}"
        self.files = []

    def path(self, name):
        self.files.append(name)
        return self.staging / name

    def table(self, frame, suffix, description):
        frame.to_csv(self.path(f"{self.prefix}_{suffix}.tsv"), sep="\t", index=False, na_rep="n/a")
        self.sidecar(f"{self.prefix}_{suffix}.json", {"Description": description})

    def sidecar(self, name, content):
        self.path(name).write_text(json.dumps({**content, "SoftwareVersions": software_versions()}, indent=2,
                                              default=float))

    def image(self, data, affine, entities, description, extra=None):
        name = f"{self.prefix}_{entities}"
        nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine).to_filename(self.path(f"{name}.nii.gz"))
        self.sidecar(f"{name}.json", {"Description": description, **(extra or {})})

    def commit(self):
        """Move the new files into place and remove this task's files of an earlier run that were not rewritten
        (a model or ROI no longer there), so that the folder holds one run's results only."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "figures").mkdir(exist_ok=True)
        fresh = {Path(name).as_posix() for name in self.files}
        for folder in (self.root, self.root / "figures"):
            for old in folder.glob(f"{self.prefix}_*"):
                if old.relative_to(self.root).as_posix() not in fresh:
                    old.unlink()
        for name in self.files:
            os.replace(self.staging / name, self.root / name)
        shutil.rmtree(self.staging, ignore_errors=True)

    def discard(self):
        shutil.rmtree(self.staging, ignore_errors=True)


def _reliable_voxels(output, config, results, mask, affine, fraction):
    """The top ``fraction`` of the symmetric mask by inter-subject correlation, or else by the participants'
    mean noise ceiling (CC_max from repeated stimuli); None (scores n/a) when there is neither."""
    ceiling, settings = inter_subject_correlation(config.bids_dir, results, mask, affine)
    if ceiling is not None:
        output.image(_on_grid(ceiling, mask), affine, "stat-isc_statmap",
                     "Split-half inter-subject correlation (10 random half splits, mean over runs)", settings)
        source = "split-half inter-subject correlation (stat-isc)"
    else:
        maps = [np.asarray(nib.load(r.ceiling_path).dataobj, dtype=float)[mask] for r in results if r.ceiling_path]
        if not maps:
            LOGGER.warning("no inter-subject correlation and no noise ceiling: mean_r_reliable is n/a")
            return None
        ceiling = np.nanmean(maps, axis=0)
        source = f"noise ceiling CC_max (stat-ccmax), mean over {len(maps)} participant(s)"
    reliable = _on_grid(ceiling >= np.nanquantile(ceiling, 1 - fraction), mask).astype(bool)
    output.image(reliable, affine, "desc-reliable_mask", f"Top {fraction:.0%} of the symmetric mask by {source}",
                 {"ReliableFraction": fraction, "ReliabilitySource": source})
    return reliable


def _on_grid(values, mask):
    grid = np.zeros(mask.shape)
    grid[mask] = values
    return grid


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
                "mean_r": float(values.mean()),
                "mean_r_reliable": float(r_map[reliable].mean()) if reliable is not None else float("nan"),
                "mean_r_top10": _participant_measure(result, label, "mean_r_top10"),
                "best_layer": float(np.median(layers)) if layers is not None else float("nan"),
                **hemisphere_scores(r_map, left, mirror), **reliable_sides(r_map)})
    table = pd.DataFrame(rows).merge(models, on="model")
    table["log10_params"] = np.log10(table["n_params"].where(table["n_params"] > 0))
    return table


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
                         "mean_r": float(r_map[parcel & mask].mean()), "n_voxels": int((parcel & mask).sum())}
                        for name, parcel in parcels.items() if (parcel & mask).any())
    return pd.DataFrame(rows, columns=PARCEL_COLUMNS)


def roi_scores(results, rois, mask):
    rows = []
    for result in results:
        for label in result.best_r:
            r_map = result.r_map(label)
            for name in sorted({key.rsplit("_", 1)[0] for key in rois}):
                left, right = rois[f"{name}_L"] & mask, rois[f"{name}_R"] & mask
                if not left.any() or not right.any():
                    continue
                rows.append({"participant": f"sub-{result.subject}", "model": label, "roi": name,
                             "left": r_map[left].mean(), "right": r_map[right].mean(),
                             "l_minus_r": r_map[left].mean() - r_map[right].mean(),
                             "n_voxels_left": int(left.sum()), "n_voxels_right": int(right.sum())})
    return pd.DataFrame(rows, columns=ROI_COLUMNS)


def _roi_scaling(roi_table, models):
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


def _one_sample_t(output, maps, mask_img, affine, model, desc, description):
    """Second-level one-sample t map over participants (nilearn), and its FDR-thresholded version."""
    from nilearn.glm import threshold_stats_img
    from nilearn.glm.second_level import SecondLevelModel

    images = [nib.Nifti1Image(np.asarray(m, dtype=np.float32), affine) for m in maps]
    design = pd.DataFrame({"intercept": np.ones(len(images))})
    t_map = SecondLevelModel(mask_img=mask_img).fit(images, design_matrix=design).compute_contrast(
        "intercept", output_type="stat")
    prefix = f"model-{model}_" if model else ""
    output.image(t_map.get_fdata(), affine, f"{prefix}{f'desc-{desc}_' if desc else ''}stat-t_statmap", description)
    thresholded, threshold = threshold_stats_img(t_map, mask_img=mask_img, alpha=0.05, height_control="fdr",
                                                 two_sided=False)
    output.image(thresholded.get_fdata(), affine, f"{prefix}desc-{desc}fdr05_stat-t_statmap",
                 f"{description}, thresholded at FDR q < 0.05 (one-sided)", {"Threshold": float(threshold)})


def _group_maps(output, results, models, mask, left, mirror, affine):
    """Per model: one-sample t of Fisher-z r and of L - R; across models: the voxel-wise scaling slope."""
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    left_img = nib.Nifti1Image(left.astype(np.uint8), affine)
    maps_by_model = {label: {r.subject: r.r_map(label) * mask for r in results if label in r.best_r}
                     for label in models["model"]}
    for label, by_participant in maps_by_model.items():
        maps = list(by_participant.values())
        output.image(mirror_difference(np.mean(maps, axis=0), left, mirror), affine,
                     f"model-{label}_desc-LminusR_stat-r_statmap",
                     "Group-mean best-layer r minus its mirror image (left voxels; right and midline 0)")
        if len(maps) < 2:
            continue
        _one_sample_t(output, [np.arctanh(np.clip(m, -0.999, 0.999)) for m in maps], mask_img, affine,
                      label, "", "One-sample t of Fisher-z best-layer r over participants")
        _one_sample_t(output, [mirror_difference(m, left, mirror) for m in maps], left_img, affine,
                      label, "LminusR", "One-sample t of r minus its mirror image over participants")
    trained = models[~models["baseline"]]
    if trained["n_params"].nunique() < 2:
        return
    centered = np.log10(trained["n_params"].astype(float).to_numpy())
    centered = centered - centered.mean()
    complete = [subject for subject in sorted({r.subject for r in results})
                if all(subject in maps_by_model[label] for label in trained["model"])]
    if not complete:
        return
    slopes = [sum(c * maps_by_model[label][subject] for c, label in zip(centered, trained["model"]))
              / (centered ** 2).sum() for subject in complete]
    output.image(np.mean(slopes, axis=0) * mask, affine, "stat-slope_statmap",
                 "Voxel-wise slope of best-layer r on log10(parameters), mean over participants (trained models)",
                 {"Models": list(trained["model_id"]), "Participants": [f"sub-{s}" for s in complete]})
    if len(slopes) >= 2:
        _one_sample_t(output, slopes, mask_img, affine, None, "slope",
                      "One-sample t of the participants' voxel-wise scaling slopes")


def _with_desc(entities, suffix):
    """``model-a_desc-b`` -> ``model-a_desc-b<suffix>``; ``model-a`` -> ``model-a_desc-<suffix>``."""
    if "desc-" in entities:
        return re.sub(r"desc-([0-9A-Za-z]+)", rf"desc-\g<1>{suffix}", entities, count=1)
    return f"{entities}_desc-{suffix}"


def run_group_level(config, atlas=None, n_bootstraps=2000, roi_file=None, reliable_fraction=0.25):
    """Run the group level on the participant results in ``config.output_dir``.

    Returns
    -------
    str
        A one-line summary.
    """
    from bids_encoding.group import figures

    results = collect(config.output_dir, config.task, config.participant_labels)
    check_consistency(results)
    summaries = []
    for task in sorted({r.task for r in results}):
        members = [r for r in results if r.task == task]
        reference = nib.load(members[0].mask_path)
        affine = reference.affine
        mask, left, mirror = symmetric_mask([np.asarray(nib.load(r.mask_path).dataobj) > 0 for r in members],
                                            affine)
        models = model_table(members)
        if not is_template_space(members[0].space):
            LOGGER.warning("space-%s is not a TemplateFlow template: hemispheres are split at x = 0 of the images' "
                           "affine and the language ROIs are MNI coordinates, so left/right and ROI results hold "
                           "only if the data are aligned to MNI space", members[0].space)
        output = GroupOutput(config.output_dir, task, members[0].space)
        try:
            output.image(mask, affine, "desc-symmetric_mask", "Participants' masks intersected with their "
                         "mirror image; the midline (|x| < half a voxel) excluded")
            reliable = _reliable_voxels(output, config, members, mask, affine, reliable_fraction)
            scores = participant_scores(members, models, mask, left, mirror, reliable)
            output.table(scores, "scores", "Per participant and model, on the symmetric mask, best-layer r")
            trained = scores[~scores["baseline"]]
            measures = [m for m in MEASURES if scores[m].notna().any()]
            fits = scaling_table(trained, measures, ["log10_params", "n_layers", "hidden_size"], n_bootstraps)
            output.table(fits, "fits", "score = intercept + slope x predictor, per participant and group; group "
                         "CI from a bootstrap over participants, p from a t-test of participant slopes")
            output.table(multiple_table(trained, measures, n_bootstraps), "multifits",
                         "Group-mean score = intercept + b1 log10(parameters) + b2 layers + b3 hidden size (OLS across "
                         "trained models; CIs from a bootstrap over participants); empty with fewer than 6 models")
            rois = sphere_masks(affine, mask.shape, read_roi_file(roi_file) if roi_file else LANGUAGE_ROIS)
            roi_table = roi_scores(members, rois, mask)
            output.table(roi_table, "rois", "Language ROIs (10 mm spheres, left and mirrored right)")
            output.table(_roi_scaling(roi_table, models), "roifits",
                         "Per ROI: correlation of group-mean L - R with log10(parameters), trained models")
            if atlas:
                parcels = atlas_parcels(atlas, members[0].space, reference)
                output.table(parcel_scores(members, parcels, mask), f"atlas-{atlas}_parcels",
                             f"Mean best-layer r per {atlas} parcel, on the symmetric mask")
                atlas_rois = roi_scores(members, lateral_regions(parcels), mask)
                output.table(atlas_rois, f"atlas-{atlas}_rois", f"{atlas} regions found in both hemispheres "
                             "(numbered parcels of a region united), left and right")
                output.table(_roi_scaling(atlas_rois, models), f"atlas-{atlas}_roifits",
                             "Per region: correlation of group-mean L - R with log10(parameters), trained models")
            _group_maps(output, members, models, mask, left, mirror, affine)
            if not trained.empty and trained["n_params"].nunique() >= 2:
                baselines = scores[scores["baseline"]]
                figures.scaling_figure(trained, fits, ["mean_r", "left", "right"],
                                       output.path(f"figures/{output.prefix}_desc-scaling_plot.svg"), baselines)
                figures.scaling_figure(trained, fits, ["l_minus_r"],
                                       output.path(f"figures/{output.prefix}_desc-lateralization_plot.svg"),
                                       baselines)
            if not roi_table.empty:
                figures.roi_figure(roi_table, output.path(f"figures/{output.prefix}_desc-roiasymmetry_plot.svg"))
            for t_path in sorted(output.staging.glob(f"{output.prefix}_*stat-t_statmap.nii.gz")):
                entities = t_path.name[len(output.prefix) + 1:-len("_stat-t_statmap.nii.gz")]
                if "fdr05" not in entities:
                    figures.glass_brain(str(t_path), output.path(
                        f"figures/{output.prefix}_{_with_desc(entities, 'glassbrain')}_plot.svg"), f"{entities}: t")
            group_fit = fits[(fits["level"] == "group") & (fits["measure"] == "mean_r")
                             & (fits["predictor"] == "log10_params") & (fits["family"] == "all")]
            slope = f"{group_fit['slope'].iloc[0]:.4f} r per decade" if not group_fit.empty else "n/a"
            summaries.append(f"task-{task}: {len(members)} participant(s), {len(models)} model(s), scaling slope "
                             f"{slope}, mean L-R {scores['l_minus_r'].mean():.4f}")
            output.commit()
        except BaseException:
            output.discard()
            raise
    return "group level done: " + "; ".join(summaries) + f"; results in {Path(config.output_dir) / 'group'}"
