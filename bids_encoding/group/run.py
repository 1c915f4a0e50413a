"""The group level, orchestration only: collect participant results, then write tables, maps and figures."""

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_encoding.derivatives.names import find, participant_dir, participant_labels
from bids_encoding.derivatives.sidecars import mask_record
from bids_encoding.derivatives.staging import GroupOutput, write_dataset_description
from bids_encoding.group import figures
from bids_encoding.group.collect import check_consistency, collect, model_table
from bids_encoding.group.joint import (
    joint_group_maps,
    joint_models,
    joint_roi_scores,
    joint_scaling,
    joint_scores,
    joint_summary,
)
from bids_encoding.group.neurons import MEASURES as NEURON_MEASURES
from bids_encoding.group.neurons import neuron_tables
from bids_encoding.group.reliability import reliable_voxels
from bids_encoding.group.rois import LANGUAGE_ROIS, atlas_parcels, lateral_regions, read_roi_file, sphere_masks
from bids_encoding.group.scaling import language_models, multiple_table, scaling_table, speech_models
from bids_encoding.group.scores import (
    MEASURES,
    model_summary,
    parcel_scores,
    participant_scores,
    roi_scaling,
    roi_scores,
)
from bids_encoding.group.second_level import group_maps
from bids_encoding.group.surface import project_group_maps
from bids_encoding.hemispheres import is_template_space, symmetric_mask
from bids_encoding.reports.style import model_names

LOGGER = logging.getLogger(__name__)


def run_group_level(config):
    """Run the group level on the participant results in ``config.output_dir``.

    Parameters
    ----------
    config : GroupConfig

    Returns
    -------
    str
        A one-line summary.
    """
    results = collect(config.output_dir, config.task, config.participant_labels)
    _report_participants(config, results)
    check_consistency(results)
    write_dataset_description(config.output_dir, config.bids_dir)  # brought up to date (README, .bidsignore)
    summaries = []
    for task in sorted({r.task for r in results}):
        members = [r for r in results if r.task == task and not r.is_average]
        average = [r for r in results if r.task == task and r.is_average]
        if not members:  # only the average participant: it is the group
            members, average = average, []
        with GroupOutput(config.output_dir, task, members[0].space) as output:
            summaries.append(_task_level(config, members, output, average[0] if average else None))
        if config.neurovault:
            _neurovault(config, task, members)
    return "group level done: " + "; ".join(summaries) + f"; results in {Path(config.output_dir) / 'group'}"


def _neurovault(config, task, members):
    """--neurovault: the task's unthresholded group maps as a NeuroVault collection."""
    from bids_encoding.derivatives.neurovault import collection_record, dataset_source, export_collection

    source = dataset_source(config.output_dir)
    record = collection_record(f"{source.get('Name', Path(config.bids_dir).name)}, task-{task}: encoding models of "
                               "language (bids_encoding)", f"Group maps of {len(members)} participants listening "
                               f"to stories (task-{task}): one-sample t of Fisher-z best-layer r per model, its "
                               "left-minus-right asymmetry and the voxel-wise scaling slope.", [source])
    folder = export_collection(Path(config.output_dir) / "neurovault" / f"group_task-{task}",
                               Path(config.output_dir) / "group", record, "G", len(members), {"task": task})
    LOGGER.info("NeuroVault collection written to %s (upload: python %s)", folder, folder / "upload.py")


def _report_participants(config, results):
    """Say which participants the group level uses, which are incomplete (maps without their scores table: a
    killed or running job) and which have no results; participants asked for by label must have results."""
    from bids_encoding.errors import MissingInputError

    found = sorted({r.subject for r in results})
    output_dir = Path(config.output_dir)
    wanted = list(config.participant_labels or [])
    known = sorted({path.name[4:] for path in Path(config.bids_dir).glob("sub-*") if path.is_dir()}
                   | set(participant_labels(output_dir)))
    candidates = [s for s in (wanted or known) if s not in found]
    incomplete = [s for s in candidates
                  if find(participant_dir(output_dir, s), suffix="statmap", extension=".nii.gz")]
    missing = [s for s in candidates if s not in incomplete]
    LOGGER.info("group level: %d participant(s) with results: %s", len(found), ", ".join(f"sub-{s}" for s in found))
    if wanted and candidates:
        raise MissingInputError(f"no complete participant results in {output_dir} for "
                                f"{', '.join('sub-' + s for s in candidates)}: run (or finish) their participant level "
                                "first, or leave them out of --participant-label")
    if incomplete:
        LOGGER.warning("left out, incomplete (maps without a scores table: a job killed or still running): %s",
                       ", ".join(f"sub-{s}" for s in incomplete))
    if missing:
        LOGGER.warning("left out, no results in %s: %s (run their participant level to include them)", output_dir,
                       ", ".join(f"sub-{s}" for s in missing))


def _task_level(config, members, output, average=None):
    """Every group output of one task, staged in ``output``; returns the task's summary. ``average``, the
    average participant's results, gets its own scores, fits and scaling figure (``desc-average``); it never
    enters the group statistics of the participants."""
    reference = nib.load(members[0].mask_path)
    affine = reference.affine
    mask, left, mirror = symmetric_mask([r.own_mask for r in members], affine, config.mask_threshold)
    models = model_table(members)
    if not is_template_space(members[0].space):
        LOGGER.warning("space-%s is not a TemplateFlow template: hemispheres are split at x = 0 of the images' "
                       "affine and the language ROIs are MNI coordinates, so left/right and ROI results hold "
                       "only if the data are aligned to MNI space", members[0].space)
    needed = max(1, int(np.ceil(config.mask_threshold * len(members) - 1e-9)))
    sources = [f"bids::{Path(r.mask_path).relative_to(config.output_dir)}" for r in members]
    masks = mask_record("Brain", sources, members[0].space, sources[0])  # BIDS URIs in this dataset
    output.image(mask, affine, "mask", f"Voxels in the masks of at least {needed} of the {len(members)} "
                 "participants, intersected with their mirror image; the midline (|x| < half a voxel) excluded",
                 {**masks, "MaskThreshold": config.mask_threshold, "MinimumParticipants": needed,
                  "Rule": "intersection" if needed == len(members) else "union with a minimum count"},
                 desc="symmetric")
    reliability = reliable_voxels(config.bids_dir, members, mask, affine, config.reliable_fraction)
    reliable = None
    if reliability is not None:
        if reliability.isc is not None:
            output.image(reliability.isc, affine, "statmap", "Split-half inter-subject correlation (10 random "
                         "half splits, mean over runs)", reliability.isc_settings, stat="isc")
        output.image(reliability.reliable, affine, "mask",
                     f"Top {reliability.fraction:.0%} of the symmetric mask by {reliability.source}",
                     {**masks, "Type": "ROI", "ReliableFraction": reliability.fraction,
                      "ReliabilitySource": reliability.source},
                     desc="reliable")
        reliable = reliability.reliable

    scores = participant_scores(members, models, mask, left, mirror, reliable)
    output.table(scores, "scores", "Per participant and model, on the symmetric mask, best-layer r")
    output.table(model_summary(scores), "models", "Per model: mean and standard error over participants of "
                 "each score (symmetric mask, best-layer r)")
    trained = scores[~scores["baseline"]]
    measures = [m for m in MEASURES if scores[m].notna().any()]
    fits = scaling_table(trained, measures, ["log10_params", "n_layers", "hidden_size"], config.n_bootstraps)
    output.table(fits, "fits", "score = intercept + slope x predictor, per participant and group; group CI from a "
                 "bootstrap over participants, p from a t-test of participant slopes")
    output.table(multiple_table(language_models(trained), measures, config.n_bootstraps), "multifits",
                 "Group-mean score = intercept + b1 log10(parameters) + b2 layers + b3 hidden size (OLS across "
                 "trained language models; CIs from a bootstrap over participants); empty with fewer than 6 models")
    rois = sphere_masks(affine, mask.shape, read_roi_file(config.roi_file) if config.roi_file else LANGUAGE_ROIS)
    roi_table = roi_scores(members, rois, mask)
    output.table(roi_table, "rois", "Language ROIs (10 mm spheres, left and mirrored right)")
    output.table(roi_scaling(roi_table, language_models(models)), "roifits",
                 "Per ROI: correlation of group-mean L - R with log10(parameters), trained language models")
    if config.atlas:
        atlas = config.atlas
        parcels = atlas_parcels(atlas, members[0].space, reference)
        output.table(parcel_scores(members, parcels, mask), "parcels",
                     f"Mean best-layer r per {atlas} parcel, on the symmetric mask", atlas=atlas)
        atlas_regions = lateral_regions(parcels)
        atlas_rois = roi_scores(members, atlas_regions, mask)
        output.table(atlas_rois, "rois", f"{atlas} regions found in both hemispheres (numbered parcels of a "
                     "region united), left and right", atlas=atlas)
        output.table(roi_scaling(atlas_rois, language_models(models)), "roifits", "Per region: correlation of "
                     "group-mean L - R with log10(parameters), trained language models", atlas=atlas)
    group_maps(output, members, models, mask, left, mirror, affine)
    _joint_outputs(config, output, members, (mask, left, mirror, affine), rois)
    project_group_maps(output, nib.Nifti1Image(mask.astype(np.uint8), affine),
                       {None: rois, **({config.atlas: atlas_regions} if config.atlas else {})})
    _data_scaling_outputs(config, output, members)
    _figures(output, trained, fits, scores, roi_table)
    _neuron_outputs(config, output, members, models)
    if average is not None:
        _average_outputs(config, output, average, models, mask, left, mirror, reliable)

    group_fit = fits[(fits["level"] == "group") & (fits["measure"] == "mean_r")
                     & (fits["predictor"] == "log10_params") & (fits["family"] == "all")]
    slope = f"{group_fit['slope'].iloc[0]:.4f} r per decade" if not group_fit.empty else "n/a"
    return (f"task-{members[0].task}: {len(members)} participant(s), {len(models)} model(s), scaling slope {slope}, "
            f"mean L-R {scores['l_minus_r'].mean():.4f}")


def _data_scaling_outputs(config, output, members):
    """With participants' --data-scaling tables: the scores per training size and the lines against log10(training
    scans)."""
    from bids_encoding.group.datascaling import data_scaling_fits, data_scaling_scores

    scores = data_scaling_scores(members)
    if scores.empty:
        return
    output.table(scores, "datascaling", "Per participant, model and number of training stimuli: held-out scores "
                 "averaged over outer folds and random subsets (--data-scaling)")
    fits = data_scaling_fits(scores, config.n_bootstraps)
    output.table(fits, "datafits", "score = intercept + slope x log10(training scans), per model, participant and "
                 "group; group CI from a bootstrap over participants")
    if scores["n_stimuli"].nunique() >= 2:
        figures.data_scaling_figure(scores, fits, output.figure(desc="datascaling"))


def _joint_outputs(config, output, members, geometry, rois):
    """The joint models' tables (per participant, space and ROI), group maps per space, and the scaling of the
    language model's unique R² over its size (docs/group.md "Joint models")."""
    models = joint_models(members)
    if not models:
        return
    mask, left, mirror, _ = geometry
    scores = joint_scores(members, models, mask, left, mirror)
    output.table(scores, "jointscores", "Joint models: per participant, joint model and space, the means over the "
                 "symmetric mask of the space's unique R², split r and split R², and its unique R² on the left, the "
                 "right (mirror voxels) and left - right", {"JointModels": {
                     label: {"Spaces": about["spaces"], "LanguageModel": about["language"],
                             "ModelId": about["model"]["Id"]} for label, about in models.items()}})
    output.table(joint_summary(scores), "jointmodels", "Joint models: per joint model and space, the mean over "
                 "participants and its standard error of the unique R², split r, split R² and left - right unique R²")
    output.table(joint_roi_scores(members, rois, mask), "jointrois", "Joint models: per participant, joint model, "
                 "space and language ROI (10 mm spheres, left and mirrored right), the space's mean unique R²")
    joint_group_maps(output, members, models, geometry, is_template_space(members[0].space))
    fits, entered = joint_scaling(scores, config.n_bootstraps)
    output.table(fits, "jointfits", "Joint models: the language model's unique R² (and split R²) = intercept + "
                 "slope x log10(parameters), across the joint models with the same other spaces (lowlevel) and "
                 "language models of at least two sizes; per participant and group (bootstrap CI over "
                 "participants)", {"JointModels": entered})
    for index, (lowlevel, joint) in enumerate(sorted(entered.items())):
        language = scores[scores["language"] & scores["model"].isin(joint)]
        figures.scaling_figure(language, fits[fits["lowlevel"] == lowlevel], ["unique_r2", "split_r2"],
                               output.figure(desc="jointscaling" + (str(index + 1) if index else "")),
                               ylabel="R² on held-out data")


def _average_outputs(config, output, average, models, mask, left, mirror, reliable):
    """The average participant's scores and scaling fits on the group's symmetric mask, and its figure."""
    scores = participant_scores([average], models, mask, left, mirror, reliable)
    output.table(scores, "scores", f"The average participant ({', '.join(_average_of(average))}), on the "
                 "symmetric mask, best-layer r", desc="average")
    trained = scores[~scores["baseline"]]
    measures = [m for m in MEASURES if scores[m].notna().any()]
    fits = scaling_table(trained, measures, ["log10_params", "n_layers", "hidden_size"], config.n_bootstraps)
    output.table(fits, "fits", "The average participant: score = intercept + slope x predictor (its own fit; no "
                 "confidence interval across participants)", desc="average")
    language = language_models(trained)
    if not language.empty and language["n_params"].nunique() >= 2:
        figures.scaling_figure(language, fits, ["mean_r", "left", "right"], output.figure(desc="averagescaling"),
                               scores[scores["baseline"]])


def _average_of(average):
    sidecar = next(iter(average.sidecars.values()), {})
    return sidecar.get("AverageOf") or ["participants"]


def _neuron_outputs(config, output, members, models):
    """The neurons-to-networks measures per participant and model, their change with model size, and per model
    the networks its patterns match and its neurons' networks by layer (when the participants have them)."""
    measures, summary, layers, patterns = neuron_tables(members, models)
    if measures is None:
        return
    output.table(measures, "neurons", "Neurons to networks (docs/neurons.md), per participant and model: fraction "
                 "of patterns matched to a network, diversity (normalized entropy of neurons over patterns), "
                 "fraction of neurons whose pattern is matched")
    output.table(summary, "neuronmodels", "Per model: the neuron measures' means over participants and the "
                 "consistency of neuron-to-network assignments across participants")
    trained = measures[~measures["baseline"]]
    fits = scaling_table(trained, list(NEURON_MEASURES), ["log10_params"], config.n_bootstraps)
    output.table(fits, "neuronfits", "neuron measure = intercept + slope x log10(parameters), per participant and "
                 "group (bootstrap CI over participants), as the main scaling fits")
    for model in sorted(layers):
        if layers[model] is not None:
            output.table(layers[model].reset_index(), "neuronlayers", "Mean number of neurons per layer (rows) whose "
                         "pattern matches each network, over participants", model=model)
        output.table(patterns[model].reset_index(), "neuronpatterns", "Per pattern, the fraction of participants "
                     "whose pattern map matched each network", model=model)
        figures.neuron_networks_figure(patterns[model], layers[model], output.figure(model=model,
                                                                                      desc="neuronnetworks"))
    if not trained.empty and trained["n_params"].nunique() >= 2:
        figures.scaling_figure(trained, fits, list(NEURON_MEASURES),
                               output.figure(desc="neuronscaling"), ylabel="measure")


def _figures(output, trained, fits, scores, roi_table):
    """The model-size laws (the language models', with the lateralization, and the speech models'), and the
    language regions' asymmetry."""
    baselines = scores[scores["baseline"]]
    reliable = ["mean_r_reliable"] if trained["mean_r_reliable"].notna().any() else []
    language, speech = language_models(trained), speech_models(trained)
    if not language.empty and language["n_params"].nunique() >= 2:
        figures.scaling_figure(language, fits, ["mean_r", "left", "right"] + reliable, output.figure(desc="scaling"),
                               baselines)
        figures.scaling_figure(language, fits, ["l_minus_r"] + (["l_minus_r_reliable"] if reliable else []),
                               output.figure(desc="lateralization"), baselines)
    if not speech.empty and speech["n_params"].nunique() >= 2:
        figures.scaling_figure(speech, fits, ["mean_r", "left", "right"] + reliable,
                               output.figure(desc="speechscaling"), baselines, family="speech")
    if not roi_table.empty:
        figures.roi_figure(roi_table, output.figure(desc="roiasymmetry"), model_names(scores))
