"""Second-level maps: one-sample t over participants (nilearn), L - R maps and voxel-wise scaling slopes."""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd

from bids_encoding.group.scaling import language_models, speech_models
from bids_encoding.hemispheres import mirror_difference


def one_sample_t(output, maps, mask_img, affine, model, desc, description):
    """Second-level one-sample t map over participants (nilearn), and its FDR-thresholded version.

    nilearn's FDR (``threshold_stats_img``) reads its input as a z map; a t map of few participants has far heavier
    tails (with 3 participants, t of 2 df), so the t map is first converted to the z of the same one-sided p-value
    under t with n - 1 degrees of freedom (nilearn's ``output_type="z_score"`` does the same), Benjamini-Hochberg is
    applied to those, and the thresholded map keeps the t values, with the threshold given in t.
    """
    from nilearn.glm import threshold_stats_img
    from nilearn.glm.second_level import SecondLevelModel
    from scipy import stats

    images = [nib.Nifti1Image(np.asarray(m, dtype=np.float32), affine) for m in maps]
    design = pd.DataFrame({"intercept": np.ones(len(images))})
    contrast = SecondLevelModel(mask_img=mask_img).fit(images, design_matrix=design).compute_contrast(
        "intercept", output_type="all")
    t_map, z_map = contrast["stat"], contrast["z_score"]
    dof = len(images) - 1
    output.image(t_map.get_fdata(), affine, "statmap", description, {"DegreesOfFreedom": dof}, model=model,
                 desc=desc or None, stat="t")
    with warnings.catch_warnings():  # nilearn warns when no voxel passes (threshold inf): said in the sidecar
        warnings.filterwarnings("ignore", message="The given float value must not exceed")
        thresholded_z, z_threshold = threshold_stats_img(z_map, mask_img=mask_img, alpha=0.05,
                                                         height_control="fdr", two_sided=False)
    kept = thresholded_z.get_fdata() != 0
    threshold = float(stats.t.isf(stats.norm.sf(z_threshold), dof)) if np.isfinite(z_threshold) else None
    output.image(np.where(kept, t_map.get_fdata(), 0.0), affine, "statmap", f"{description}, thresholded at FDR "
                 "q < 0.05 (one-sided)",
                 {"Threshold": threshold, "NumberOfVoxels": int(kept.sum()), "DegreesOfFreedom": dof,
                  "Null": f"t with {dof} degrees of freedom (Benjamini-Hochberg on its one-sided p-values, as z)"},
                 model=model, desc=f"{desc}fdr05", stat="t")


def nanmean(maps):
    """Mean over participants of the values they have (NaN where none has one), without numpy's warning."""
    stacked = np.asarray(maps, dtype=float)
    count = np.sum(~np.isnan(stacked), axis=0)
    return np.where(count > 0, np.nansum(stacked, axis=0) / np.maximum(count, 1), np.nan)


def t_masks(results, mask, left, mirror, affine):
    """The t maps' masks, as images: the voxels of ``mask`` every participant has, and the left ones among them
    whose mirror every participant has too (for L - R)."""
    everyone = mask & np.logical_and.reduce([r.own_mask for r in results])
    complete_left = left & everyone & everyone.ravel()[np.maximum(mirror, 0)].reshape(mask.shape) & \
        (mirror >= 0).reshape(mask.shape)
    return (nib.Nifti1Image(everyone.astype(np.uint8), affine),
            nib.Nifti1Image(complete_left.astype(np.uint8), affine))


def group_maps(output, results, models, mask, left, mirror, affine):
    """Per model: one-sample t of Fisher-z r and of L - R; across models: the voxel-wise scaling slope.

    Means are over the participants who have the voxel (a group mask wider than the intersection); t maps
    are computed where every participant has the voxel and its mirror.
    """
    mask_img, left_img = t_masks(results, mask, left, mirror, affine)
    maps_by_model = {label: {r.subject: np.where(mask, r.r_map(label), 0.0) for r in results if label in r.best_r}
                     for label in models["model"]}
    for label, by_participant in maps_by_model.items():
        maps = list(by_participant.values())
        output.image(np.nan_to_num(mirror_difference(nanmean(maps), left, mirror)), affine, "statmap",
                     "Group-mean best-layer r minus its mirror image (left voxels; right and midline 0)",
                     model=label, desc="LminusR", stat="r")
        if len(maps) < 2:
            continue
        one_sample_t(output, [np.arctanh(np.clip(np.nan_to_num(m), -0.999, 0.999)) for m in maps], mask_img, affine,
                      label, "", "One-sample t of Fisher-z best-layer r over participants")
        one_sample_t(output, [np.nan_to_num(mirror_difference(m, left, mirror)) for m in maps], left_img, affine,
                      label, "LminusR", "One-sample t of r minus its mirror image over participants")
    trained = models[~models["baseline"]]
    for desc, family in (("", language_models(trained)), ("speech", speech_models(trained))):
        _slope_maps(output, family, maps_by_model, mask, mask_img, affine, desc)


def _slope_maps(output, trained, maps_by_model, mask, mask_img, affine, desc):
    """The voxel-wise slope of best-layer r on log10(parameters) across ``trained`` (one law: the language models,
    or the speech models with ``desc`` ``speech``), mean over participants, and its one-sample t map."""
    if trained["n_params"].nunique() < 2:
        return
    centered = np.log10(trained["n_params"].astype(float).to_numpy())
    centered = centered - centered.mean()
    complete = [subject for subject in sorted({s for label in trained["model"] for s in maps_by_model[label]})
                if all(subject in maps_by_model[label] for label in trained["model"])]
    if not complete:
        return
    slopes = [sum(c * maps_by_model[label][subject] for c, label in zip(centered, trained["model"]))
              / (centered ** 2).sum() for subject in complete]
    kind = "speech models" if desc else "trained language models"
    output.image(np.nan_to_num(nanmean(slopes)) * mask, affine, "statmap",
                 f"Voxel-wise slope of best-layer r on log10(parameters), mean over participants ({kind})",
                 {"Models": list(trained["model_id"]), "Participants": [f"sub-{s}" for s in complete]},
                 desc=desc or None, stat="slope")
    if len(slopes) >= 2:
        one_sample_t(output, [np.nan_to_num(s) for s in slopes], mask_img, affine, None, desc + "slope",
                      f"One-sample t of the participants' voxel-wise scaling slopes ({kind})")


