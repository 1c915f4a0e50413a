"""Participant level: inputs -> features -> design -> ridge -> outputs.

Participants who heard the same stimuli (same runs, words, timings and
scan counts) share one design matrix: their voxels are concatenated and
fitted together, so everything that depends on the design alone is
computed once.
"""

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bids_encoding.derivatives import (
    ParticipantOutput,
    participant_hemispheres,
    summary_scores,
    write_dataset_description,
)
from bids_encoding.derivatives.resume import (
    LayerCheckpoint,
    committed_fits,
    fit_fingerprint,
    fit_record,
    remove_committed_checkpoints,
    reusable_models,
)
from bids_encoding.derivatives.sidecars import (
    bids_uri,
    cv_scheme_record,
    mask_record,
    participant_sidecar,
    ridge_record,
    significance_record,
    source_path,
)
from bids_encoding.errors import BadDataError, BidsAppError, UsageError
from bids_encoding.features import FeatureCache, parse_model_spec
from bids_encoding.features.engine import FeatureExtractor
from bids_encoding.group.rois import language_coverage
from bids_encoding.hemispheres import in_templateflow, is_template_space
from bids_encoding.inputs import load_layout, select_runs
from bids_encoding.inputs.bold import clean_run_bold
from bids_encoding.inputs.derivatives import derivative_roots
from bids_encoding.inputs.layout import check_timings, note_run, select_subjects
from bids_encoding.inputs.masks import ParticipantMask, participant_mask, seed_epi_mask
from bids_encoding.inputs.timings.spec import StimulusSpec
from bids_encoding.procedures import procedure
from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.ridge.ceiling import cc_max, normalized_correlation
from bids_encoding.ridge.layers import BestLayer
from bids_encoding.ridge.memory import Compute, memory_budget
from bids_encoding.ridge.scoring import zscore
from bids_encoding.ridge.significance import fdr_qvalues, voxel_pvalues
from bids_encoding.stimuli import StimulusSequence

LOGGER = logging.getLogger(__name__)
MIN_SCANS_AFTER_TRIM = 20
MIN_ROI_COVERAGE = 0.9  # below this fraction of a language ROI kept by the mask, a warning


def collect_runs(config):
    """Select and check every participant's runs before any heavy work.

    Returns
    -------
    dict
        ``{(subject, task): [Run, ...]}``
    """
    layout = load_layout(config.bids_dir, config.work_dir / "pybids", validate=config.validate)
    stimuli = StimulusSpec.load(config.stimuli) if config.stimuli else None
    pool_label = (stimuli.label if stimuli and stimuli.label else "pooled") if config.cv_unit == "stimulus" else None
    roots = derivative_roots(config.bids_dir, config.derivatives)
    selected = {}
    for subject in select_subjects(layout, config.participant_labels):
        for task, runs in select_runs(layout, subject, config.task, config.space, stimuli, pool_label,
                                      config.bold_filters, roots, config.resolution).items():
            selected[(subject, task)] = runs
    if stimuli is not None:
        check_timings([run for runs in selected.values() for run in runs])
    trim = config.design.trim_start + config.design.trim_end
    for runs in selected.values():
        for run in runs:
            if run.n_scans - trim < MIN_SCANS_AFTER_TRIM:
                raise BadDataError(f"{run.bold_path} has {run.n_scans} scans: after --trim-scans "
                                   f"{config.design.trim_start} {config.design.trim_end} fewer than "
                                   f"{MIN_SCANS_AFTER_TRIM} are left; trim fewer scans")
            run.confounds = config.confounds.load(run.bold_path)
            if run.confounds is not None:
                censored = run.confounds.record(*_kept_window(run, config))["CensoredScans"]
                if run.n_scans - trim - censored < MIN_SCANS_AFTER_TRIM:
                    raise BadDataError(f"{run.bold_path}: {censored} of its scans are censored by --confounds scrub "
                                       f"and fewer than {MIN_SCANS_AFTER_TRIM} are left; raise --fd-threshold or "
                                       "leave this run out")
    return selected


def _kept_window(run, config):
    """The scans of a run left after trimming: ``(start, stop)``."""
    return config.design.trim_start, run.n_scans - config.design.trim_end


def stimulus_sequences(selected, config):
    """``{(subject, task): StimulusSequence}`` of the selected runs."""
    return {key: StimulusSequence.of_runs(runs, config.features.continuous) for key, runs in selected.items()}


def distinct_stimuli(sequences):
    """``{cache_key: Stimulus}`` of the sequences' stimuli: each is one feature computation."""
    stimuli = {}
    for sequence in sequences:
        for stimulus in sequence.stimuli:
            stimuli.setdefault(stimulus.cache_key, stimulus)
    return stimuli


def feature_extractor(config):
    return FeatureExtractor(FeatureCache(config.feature_cache_dir), config.features, device=config.device,
                            dtype=config.dtype, trust_remote_code=config.trust_remote_code,
                            progress=config.progress, ffn_neurons=config.ffn_neurons, placement=config.placement)


def _model_specs(models):
    specs = [parse_model_spec(model) for model in models]
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise UsageError(f"models {', '.join(models)} share the file label(s) {', '.join(duplicates)}: "
                         "give each model once, or rename a local directory")
    return specs


def build_ridge(config):
    """The ridge estimator described by the configuration."""
    compute = Compute(device=config.device, dtype=getattr(torch, config.ridge_dtype), mem=config.mem,
                      voxel_chunk=config.voxel_chunk, tf32=config.tf32)
    return NestedRidgeCV(config.alphas, inner_cv=config.inner_cv, alpha_per_voxel=config.alpha_per_voxel,
                         alpha_score=config.alpha_score, rank=config.ridge_rank, compute=compute)


@dataclass
class Participant:
    """One participant's cleaned data and staged outputs for one task."""

    subject: str
    task: str
    runs: list
    responses: list
    output: ParticipantOutput
    hemispheres: tuple | None  # mirrored left and right voxels (template spaces only)
    mask: object = None  # ParticipantMask
    average_of: list | None = None  # the participants averaged, for the average participant
    ceiling: np.ndarray | None = None
    rows: list = field(default_factory=list)

    @property
    def n_voxels(self):
        return self.responses[0].shape[1]


def _coverage_record(subject, mask_img, space):
    """How much of each language ROI the mask keeps (template spaces only); a warning below 90%."""
    if not in_templateflow(space):
        return {}
    coverage = language_coverage(mask_img)
    low = {name: value for name, value in coverage.items() if value < MIN_ROI_COVERAGE}
    if low:
        LOGGER.warning("sub-%s: the brain mask covers less than %.0f%% of language ROI(s) %s: their voxels get no "
                       "score (give a mask with --mask)", subject, 100 * MIN_ROI_COVERAGE,
                       ", ".join(f"{name} {value:.0%}" for name, value in low.items()))
    return {"LanguageROICoverage": coverage}


def prepare_participant(subject, task, runs, config, sequence):
    """Mask and clean a participant's BOLD, compute the noise ceiling when stimuli repeat."""
    found = {}
    space = runs[0].space or config.space or "orig"
    mask = _mask(subject, runs, config, config.cleaning, space, found)
    LOGGER.info("sub-%s: brain mask from %s (%d voxels)", subject, mask.source, int(np.asarray(mask.img.dataobj).sum()))
    for run in runs:
        note_run(run, found.get(run.bold_path, []))
    trim = (config.design.trim_start, config.design.trim_end)
    responses = []
    for run in runs:
        found = []
        responses.append(clean_run_bold(run.bold_path, mask.img, run.repetition_time, *trim, config.cleaning,
                                        notes=found, confounds=run.confounds, resampled_dir=config.resampled_dir))
        note_run(run, found)
    return _participant(subject, task, runs, responses, mask, config, sequence)


def _mask(subject, runs, config, cleaning, space, notes=None):
    """The participant's mask: from the app's sources, or the recipe of a ``--procedure``."""
    recipe = procedure(config.procedure).mask
    if recipe is None:
        return participant_mask(runs, config.mask, space, config.epi_mask_cutoff, notes=notes)
    if cleaning.grid is not None and not is_template_space(space):
        raise UsageError(f"--procedure {config.procedure} resamples the BOLD to its MNI grid, but sub-{subject}'s "
                         f"BOLD ({runs[0].bold_path.name}) is in space '{space}': give BOLD in an MNI space "
                         "(--space), or use --procedure default")
    return seed_epi_mask(runs, cleaning, config.resampled_dir)


def isc_cache_record(runs, config):
    """What the cached cleaned BOLD is: the runs, the trimming, the cleaning, and whether confounds were
    regressed (the group reuses it only where its own reading would give the same data)."""
    return {"Description": "Cleaned BOLD of each run over the brain mask's voxels, for the group's inter-subject "
                           "correlation (--isc-cache)",
            "Bold": [source_path(run.bold_path, config.bids_dir) for run in runs],
            "TrimScans": [config.design.trim_start, config.design.trim_end],
            "Cleaning": config.cleaning.record(),
            "Confounds": any(run.confounds is not None for run in runs)}


def _timeline(output, runs, config):
    """The words against the scans of every run (the check to make when timings go wrong), for the report."""
    from bids_encoding.reports.figures import timeline_figure

    return timeline_figure([{"name": "_".join(part for part in run.bold_path.name.split("_")[1:]
                                              if part.split("-")[0] in ("ses", "task", "acq", "run", "echo")),
                             "n_scans": run.n_scans, "repetition_time": run.repetition_time,
                             "trim_start": config.design.trim_start, "trim_end": config.design.trim_end,
                             "onsets": run.words["onset"].to_numpy()} for run in runs],
                           output.figure(desc="timeline"))


def _participant(subject, task, runs, responses, mask, config, sequence):
    """Stage a participant's (or the average's) mask and compute the noise ceiling when stimuli repeat."""
    space = runs[0].space or config.space or "orig"
    hemispheres = participant_hemispheres(mask.img, space)
    output = ParticipantOutput(config.output_dir, subject, task, space, mask.img)
    bold = [bids_uri(run.bold_path, config.bids_dir) for run in runs]
    output.write_mask({"Description": "Brain mask of the fit", **mask_record("Brain", bold, space, bold[0]),
                       "MaskSource": mask.record(config.bids_dir), **_coverage_record(subject, mask.img, space)})
    _timeline(output, runs, config)
    participant = Participant(subject, task, runs, responses, output, hemispheres, mask)
    if config.isc_cache and subject != AVERAGE_LABEL:
        output.write_isc_cache(responses, runs, isc_cache_record(runs, config))
    else:
        output.drop_isc_cache()
    if sequence.repeated_groups:
        lengths = {responses[run].shape[0] for group in sequence.repeated_groups for run in group}
        if len(lengths) > 1:
            LOGGER.warning("sub-%s: repeated runs have different numbers of scans after censoring: no noise "
                           "ceiling", subject)
        else:
            participant.ceiling = cc_max([np.stack([responses[run] for run in group])
                                          for group in sequence.repeated_groups])
    return participant


AVERAGE_LABEL = "average"


def average_participant(members, task, config, sequence):
    """The average participant of ``members`` (``[(subject, runs), ...]`` who heard the same stimuli): each
    run's cleaned BOLD averaged over participants on the intersection of their masks, then z-scored again
    (Bonnasse-Gahot & Pallier's main analysis). The participants must share one grid (a template space)."""
    from nilearn import image

    cleaning = config.average_cleaning
    space = members[0][1][0].space or config.space or "orig"
    if procedure(config.procedure).mask is not None:  # the seed's recipe: one mask of every member's runs
        masks = [_mask(AVERAGE_LABEL, [run for _, runs in members for run in runs], config, cleaning, space)]
    else:
        masks = [_mask(subject, runs, config, cleaning, runs[0].space or config.space or "orig")
                 for subject, runs in members]
    reference = masks[0].img
    for (subject, runs), mask in zip(members[1:], masks[1:]):
        if mask.img.shape != reference.shape or not np.allclose(mask.img.affine, reference.affine):
            raise BadDataError(f"--average-participants: sub-{subject}'s BOLD ({runs[0].bold_path.name}) is on "
                               f"another grid than sub-{members[0][0]}'s: average participants in one template "
                               "space (--space)")
    common = np.logical_and.reduce([np.asarray(mask.img.dataobj) > 0 for mask in masks])
    if not common.any():
        raise BadDataError("--average-participants: the participants' brain masks do not overlap")
    common_img = image.new_img_like(reference, common.astype(np.uint8), copy_header=False)
    trim = (config.design.trim_start, config.design.trim_end)
    # whole-run cleaning (Bonnasse-Gahot & Pallier): the mean of the whole cleaned runs is trimmed afterwards
    whole_runs = cleaning.order == "whole-run"
    kept_everywhere = [_scans_kept_by_all([runs[k] for _, runs in members]) for k in range(len(members[0][1]))]
    # each member's whole runs as nilearn's NiftiMasker cleans them (compute_average_subject_fmri.py)
    member_cleaning = replace(cleaning, order="trim-first", ddof=1) if whole_runs else cleaning
    sums = None
    for _, runs in members:
        cleaned = [clean_run_bold(run.bold_path, common_img, run.repetition_time, *((0, 0) if whole_runs else trim),
                                  member_cleaning, confounds=_with_sample_mask(run.confounds, kept),
                                  resampled_dir=config.resampled_dir)
                   for run, kept in zip(runs, kept_everywhere)]
        sums = cleaned if sums is None else [total + run for total, run in zip(sums, cleaned)]
    if whole_runs:
        sums = [total[trim[0]:len(total) - trim[1]] for total in sums]
    responses = [zscore(total).astype(np.float32) for total in sums]  # population std, as the seed
    labels = [f"sub-{subject}" for subject, _ in members]
    mask = ParticipantMask(common_img, "intersection", [path for m in masks for path in m.files],
                           {"Of": labels, "Sources": sorted({m.source for m in masks})})
    LOGGER.info("sub-%s: average of %d participants (%s), %d voxels", AVERAGE_LABEL, len(members),
                ", ".join(labels), int(common.sum()))
    runs = [replace(run, confounds=_with_sample_mask(run.confounds, kept))
            for run, kept in zip(members[0][1], kept_everywhere)]
    participant = _participant(AVERAGE_LABEL, task, runs, responses, mask, config, sequence)
    participant.average_of = labels
    return participant


def _scans_kept_by_all(runs):
    """The scans of one run that no participant's censoring (--confounds scrub) removes, or None for all."""
    masks = [run.confounds.sample_mask for run in runs if run.confounds is not None]
    masks = [mask for mask in masks if mask is not None]
    if not masks:
        return None
    return np.array(sorted(set(masks[0].tolist()).intersection(*[set(m.tolist()) for m in masks[1:]])), dtype=int)


def _with_sample_mask(confounds, kept):
    return None if confounds is None else replace(confounds, sample_mask=kept)


def stimulus_signature(runs, sequence, config, censoring=True):
    """What must match for participants to share a design matrix: features (cache keys), scans, and what of
    the confounds the design gets (cosines and, with ``censoring``, the censored scans)."""
    return tuple((stimulus.cache_key, run.n_scans, run.repetition_time, run.origin,
                  run.confounds.signature(*_kept_window(run, config), censoring) if run.confounds is not None
                  else None)
                 for stimulus, run in zip(sequence.stimuli, runs))


def _write_layer_maps(participant, voxels, spec, layer, sidecar, r, r2, alpha=None, pvalues=None,
                      repeated_folds=None):
    """Write one layer's maps for one participant (``voxels`` selects theirs)."""
    def write(values, stat, description, dtype=np.float32):
        participant.output.write_map(values[voxels], {**sidecar, "Description": description}, dtype=dtype,
                                     model=spec.label, layer=layer, stat=stat)

    write(r.mean(axis=0), "r", "Pearson r on held-out stimuli, mean over outer folds")
    write(r2.mean(axis=0), "r2", "R² (coefficient of determination) on held-out stimuli, mean over outer folds")
    if alpha is not None:
        write(np.exp(np.log(alpha).mean(axis=0)), "alpha",
              "Ridge alpha chosen by inner cross-validation (geometric mean over outer folds)")
    if pvalues is not None:
        write(pvalues, "p", "One-sided p-value of the mean r (see Significance)")
        participant.output.write_map(fdr_qvalues(pvalues[voxels]), {**sidecar, "Description":
                                     "Benjamini-Hochberg FDR q-value over the participant's mask"},
                                     model=spec.label, layer=layer, stat="q")
    if participant.ceiling is not None and repeated_folds:
        participant.output.write_map(
            normalized_correlation(r[repeated_folds].mean(axis=0)[voxels], participant.ceiling),
            {**sidecar, "Description": "r on the repeated stimuli (with their mean response) divided by CC_max "
             "(Schoppe et al. 2016); n/a where CC_max < 0.05"}, model=spec.label, layer=layer, stat="rnorm")


def fit_participants_together(participants, model_features, config, sequence, checkpoints=None, neurons=None):
    """Fit every model and layer for participants who share one stimulus sequence, and write their maps.

    ``neurons`` (``{spec: function(cache_key, layers)}``, the feature cache's feed-forward activations) runs the
    neurons-to-networks analysis of those models (``config.neurons``). ``checkpoints`` (``{spec: LayerCheckpoint}``)
    keep each finished layer fit for a rerun after a stop, and give back the layers a stopped run finished."""
    runs = participants[0].runs  # words, timings and scans are the same for every participant here
    groups = sequence.groups
    repeated_folds = sequence.repeated_folds
    ridge = build_ridge(config)
    n_folds = len(groups)
    if len(groups) < 3:
        scheme = cv_scheme_record(ridge, len(groups))
        LOGGER.warning("%s task-%s: %d distinct stimulus/stimuli: %s",
                       ",".join(f"sub-{p.subject}" for p in participants),
                       participants[0].task, len(groups), scheme["Fallback"])
    if len(groups) == 1:
        n_folds = ridge.outer_chunks
        repeated_folds = list(range(n_folds)) if repeated_folds else []
    if config.test_stimulus and len(groups) < 2:
        raise UsageError(f"--procedure {config.procedure} tests on one held-out stimulus, but the runs of "
                         f"{','.join(f'sub-{p.subject}' for p in participants)} present a single stimulus "
                         f"({runs[0].bold_path.name}, ...): use --procedure default (chunks of it are the folds)")
    test_fold = sequence.test_fold(config.test_stimulus)
    if test_fold is not None:
        n_folds, repeated_folds = 1, [0] if test_fold in repeated_folds else []
    offsets = np.cumsum([0] + [p.n_voxels for p in participants])
    responses = [np.concatenate([p.responses[k] for p in participants], axis=1) for k in range(len(runs))]
    keep = config.pvalue_method != "none"
    for participant in participants:
        if participant.ceiling is not None:
            participant.output.write_map(participant.ceiling, {
                "Description": "Noise ceiling CC_max from repeated stimuli (Schoppe et al. 2016)",
                "RepeatedStimuli": [participant.runs[run].bold_path.name for group in sequence.repeated_groups
                                    for run in group]},
                stat="ccmax")
    for spec, (features, model_info) in model_features.items():
        matrices = [config.design.word_matrix(run.words, run.n_scans, run.repetition_time) for run in runs]
        bases = {p.subject: {**participant_sidecar(config, p.runs, spec, model_info, ridge, sequence,
                                                   p.mask.record(config.bids_dir),
                                                   config.average_cleaning if p.average_of else config.cleaning),
                             **({"AverageOf": p.average_of} if p.average_of else {})}
                 for p in participants}
        label = ",".join(f"sub-{p.subject}" for p in participants)
        checkpoint = (checkpoints or {}).get(spec)
        finished, state = checkpoint.load() if checkpoint is not None else ({}, None)
        if finished:
            LOGGER.info("%s %s: %d layer fit(s) of a stopped run reused from %s", label, spec.label, len(finished),
                        checkpoint.folder)
        done = sorted(finished)
        bar = tqdm(total=len(model_info.layers) * n_folds, desc=f"fit {label} {spec.label}", unit="fold",
                   disable=not config.progress, leave=False)
        best = BestLayer.from_state(state)
        progress = _LayerProgress(f"{label} {spec.label}", len(model_info.layers) - len(finished), config.progress)
        for layer in model_info.layers:
            arrays = finished.get(layer)
            if arrays is None:
                bar.set_postfix_str(f"layer {layer}")
                arrays = _fit_layer(ridge, config, features, layer, matrices, sequence, runs, responses,
                                    participants, best, bar, test_fold)
                done.append(layer)
                if checkpoint is not None:
                    checkpoint.save(layer, arrays, best.state(), done)
                progress.fitted(layer)
            for index, participant in enumerate(participants):
                voxels = slice(offsets[index], offsets[index + 1])
                _write_layer_maps(participant, voxels, spec, layer, {**_with_form(bases[participant.subject],
                                                                                  arrays.get("form")), "Layer": layer,
                                                                     **_shared_alphas(arrays.get("alpha"), voxels,
                                                                                      config)},
                                  arrays["r"], arrays["r2"], arrays.get("alpha"), arrays.get("p"), repeated_folds)
                participant.rows.append(_score_row(spec, model_info, layer, arrays["r"][:, voxels],
                                                   arrays["r2"][:, voxels], arrays["validation"][:, voxels],
                                                   participant))
        bar.close()
        chosen = best.most_chosen_layer(model_info.layers)
        pvalues = voxel_pvalues(best.predictions, best.targets, config.pvalue_method,
                                config.n_permutations) if keep else None
        for index, participant in enumerate(participants):
            sidecar = {**_with_form(bases[participant.subject], arrays.get("form")), "Layer": "best",
                       "LayerChoice": "per voxel and outer fold, "
                       "the layer with the best inner-validation score at the alpha used (never the test data)"}
            voxels = slice(offsets[index], offsets[index + 1])
            _write_layer_maps(participant, voxels, spec, "best", sidecar, best.test_r, best.test_r2,
                              pvalues=pvalues, repeated_folds=repeated_folds)
            participant.output.write_map(chosen[voxels], {**sidecar, "Description": "Layer chosen most often "
                                         "over outer folds"}, dtype=np.int16, model=spec.label, layer="best",
                                         stat="layer")
            participant.rows.append(_score_row(spec, model_info, "best", best.test_r[:, voxels],
                                               best.test_r2[:, voxels], best.validation[:, voxels], participant))
        if config.neurons and spec in (neurons or {}):
            _neuron_analysis(participants, spec, model_info, neurons[spec], config, sequence, ridge, bases, offsets,
                             responses)


def _neuron_analysis(participants, spec, model_info, load, config, sequence, ridge, bases, offsets, responses):
    from bids_encoding.neurons.analysis import analyse_neurons

    activations = [load(stimulus.cache_key, model_info.layers) for stimulus in sequence.stimuli]
    if any(run is None for run in activations):
        raise UsageError(f"{spec.label}: the feature cache has no feed-forward neurons of every stimulus: rerun "
                         "with --ffn-neurons")
    LOGGER.info("%s %s: neuron patterns and networks", ",".join(f"sub-{p.subject}" for p in participants), spec.label)
    analyse_neurons(participants, spec, model_info, activations, config, sequence, ridge, bases, offsets, responses)


def _shared_alphas(alpha, voxels, config):
    """With one alpha shared by a participant's voxels, the alpha of each outer fold (``AlphaPerFold``)."""
    if alpha is None or config.alpha_per_voxel or voxels.stop <= voxels.start:
        return {}
    return {"AlphaPerFold": [float(value) for value in alpha[:, voxels.start]]}


def _with_form(sidecar, form):
    """The sidecar with the ridge form(s) that the fit used (``Ridge.FormUsed``)."""
    if form is None:
        return sidecar
    return {**sidecar, "Ridge": {**sidecar["Ridge"], "FormUsed": "/".join(str(f) for f in np.atleast_1d(form))}}


class _LayerProgress:
    """A line per fitted layer with the time so far and an estimate of the rest, where no progress bar shows
    (the log file always; the screen when it is not a terminal: job logs, CI, a notebook's captured output)."""

    def __init__(self, what, total, bar_shown):
        self.what, self.total, self.count = what, total, 0
        self.level = logging.DEBUG if bar_shown else logging.INFO
        self.start = time.time()

    def fitted(self, layer):
        self.count += 1
        elapsed = time.time() - self.start
        left = elapsed / self.count * (self.total - self.count)
        estimate = f"; about {_duration(left)} left" if self.count < self.total else ""
        LOGGER.log(self.level, "%s: layer %s fitted (%d of %d, %s%s)", self.what, layer, self.count, self.total,
                   _duration(elapsed), estimate)


def _duration(seconds):
    """``42 s``, ``3 min``, ``2.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _fit_layer(ridge, config, features, layer, matrices, sequence, runs, responses, participants, best, bar,
               test_fold=None):
    """Fit one layer (nested CV), add it to ``best``; its per-voxel arrays: r, r2, alpha, validation, p.
    ``test_fold``: the one outer fold fitted (a fixed test stimulus), or ``None``: all."""
    designs = [config.design.regressors(features[stimulus.cache_key][layer], matrix, run.repetition_time,
                                        config.cleaning, run.confounds)
               for stimulus, matrix, run in zip(sequence.stimuli, matrices, runs)]
    if test_fold is not None:  # the training runs in the ridge's order (stimulus groups), then the test runs
        groups = sequence.groups
        train_runs = [run for fold, group in enumerate(groups) if fold != test_fold for run in group]
        designs = config.design.delayed_runs(designs, train_runs, groups[test_fold])
    elif config.design.delays_across_runs:
        raise ValueError("delays across the stacked training runs need a fixed test stimulus (test_stimulus)")
    keep = config.pvalue_method != "none"
    try:
        result = ridge.fit_score(designs, responses, sequence.keys, keep_predictions=keep,
                                 progress=lambda: bar.update(1), voxel_groups=[p.n_voxels for p in participants],
                                 folds=None if test_fold is None else [test_fold])
        if test_fold is not None:
            result = result.fold(test_fold)
    except MemoryError as error:
        raise UsageError(f"{error}: give more with --mem") from error
    except ValueError as error:
        if len(sequence.groups) > 1:
            raise
        raise BadDataError(f"{runs[0].bold_path}: {error}") from error
    pvalues = (voxel_pvalues(result.predictions, result.targets, config.pvalue_method, config.n_permutations)
               if keep and config.pvalue_layers == "all" else None)
    best.update(layer, result)
    return {"r": result.test_r, "r2": result.test_r2, "alpha": result.alpha, "validation": result.validation_score,
            "p": pvalues, "form": np.array(sorted(set(result.forms)))}


def _score_row(spec, model_info, layer, test_r, test_r2, validation, participant):
    return {"model": spec.label, "model_id": spec.model_id, "layer": layer,
            "n_params": model_info.n_params, "n_params_no_head": model_info.n_params_no_head,
            "n_params_non_embedding": model_info.n_params_non_embedding,
            "n_layers": model_info.n_layers, "hidden_size": model_info.hidden_size,
            **summary_scores(test_r, test_r2, validation, participant.hemispheres)}


def _batches(members, config):
    """Split participants sharing a stimulus into batches whose data take at most half the memory budget."""
    import nibabel as nib

    budget = memory_budget(config.mem, "cpu") / 2
    batches, current, size = [], [], 0
    for member in members:
        runs = member[1]
        grid = int(np.prod(nib.load(str(runs[0].bold_path)).shape[:3]))
        estimate = 4 * grid * sum(run.n_scans for run in runs)  # float32, the whole grid as an upper bound
        if current and size + estimate > budget:
            batches.append(current)
            current, size = [], 0
        current.append(member)
        size += estimate
    return batches + ([current] if current else [])


def _fit_and_write(participants, model_features, config, sequence, fits, checkpoints=None, adopted=None,
                   neurons=None):
    """Prepare (each item a Participant, or a function that makes one), fit together, write and commit; nothing
    committed when anything fails. ``fits``: ``{subject: {label: record}}`` for the scores sidecars;
    ``adopted``: ``{subject: [labels]}``, models whose committed results are kept as they are."""
    prepared = []
    try:
        for participant in participants:
            prepared.append(participant() if callable(participant) else participant)
        fit_participants_together(prepared, model_features, config, sequence, checkpoints, neurons)
        order = {label: index for index, label in enumerate(fits[prepared[0].subject])}
        for participant in prepared:
            for label in (adopted or {}).get(participant.subject, []):
                participant.rows.extend(participant.output.adopt(label))
            participant.rows.sort(key=lambda row: order[row["model"]])
            participant.output.write_scores(participant.rows, fits[participant.subject])
            participant.output.commit()
    except BaseException:
        for participant in prepared:
            participant.output.discard()
        raise
    for checkpoint in (checkpoints or {}).values():
        checkpoint.remove()
    return prepared


def _keep_committed(config, subject, task, space, fits):
    """Rewrite a committed result with only the models of ``fits``, all kept as they are (a rerun with fewer
    models): the files of the models left out go."""
    output = ParticipantOutput(config.output_dir, subject, task, space, None)
    try:
        output.adopt()
        rows = [row for label in fits for row in output.adopt(label)]
        output.write_scores(rows, fits)
        output.commit()
    except BaseException:
        output.discard()
        raise


class FitPlan:
    """Which models each participant (or average) still needs fitted, from the fingerprints of the committed
    results (:mod:`bids_encoding.derivatives.resume`); with ``config.recompute``, all of them."""

    def __init__(self, config, specs, extractor):
        self.config, self.specs, self.extractor = config, specs, extractor
        ridge = build_ridge(config)
        self.ridge_record = ridge_record(ridge)
        self.cv_scheme = partial(cv_scheme_record, ridge)
        self.significance = significance_record(config)
        self.fits, self.to_fit, self.kept, self.pruned = {}, {}, {}, []
        self.removals_found = set()  # the --remove-models entries that named a committed result

    def add(self, subject, task, runs, sequence, fingerprint_runs=None):
        """Fingerprint every model for one participant; returns the specs to fit (possibly none)."""
        space = runs[0].space or self.config.space or "orig"
        fingerprints = {spec.label: fit_fingerprint(
            self.config, fingerprint_runs or runs, sequence,
            [self.extractor.record(spec, stimulus.cache_key) for stimulus in sequence.stimuli],
            {**self.ridge_record, **self.cv_scheme(len(sequence.groups))}, self.significance) for spec in self.specs}
        committed = committed_fits(self.config.output_dir, subject, task, space)
        reusable = set() if self.config.recompute else reusable_models(committed, fingerprints, subject, task,
                                                                        self.config.output_dir)
        retained, removed = self._not_named(subject, task, committed, fingerprints, runs, sequence,
                                            fingerprint_runs)
        key = (subject, task)
        self.fits[key] = {**{spec.label: fit_record(fingerprints[spec.label], spec.model_id) for spec in self.specs},
                          **{label: committed[label] for label in retained}}
        self.to_fit[key] = [spec for spec in self.specs if spec.label not in reusable]
        self.kept[key] = sorted(reusable) + retained
        if removed and not self.to_fit[key]:
            self.pruned.append((subject, task, space))  # nothing to fit: the result is rewritten without them
        for label in reusable:
            remove_committed_checkpoints(self.config.work_dir, subject, task, fingerprints[label])
        if reusable:
            LOGGER.info("sub-%s task-%s: complete results with the same settings, inputs and code in %s for %s: "
                        "kept (--recompute fits them again)", subject, task, self.config.output_dir,
                        ", ".join(sorted(reusable)))
        return self.to_fit[key]

    def _not_named(self, subject, task, committed, fingerprints, runs, sequence, fingerprint_runs):
        """The committed models that ``--models`` does not name: those kept (said in one line, with whether they
        were fitted with other settings) and those ``--remove-models`` removes."""
        asked = set(self.config.remove_models)
        retained, removed, different = [], [], []
        for label, record in committed.items():
            if label in fingerprints:
                continue
            if label in asked or record.get("ModelId") in asked:
                removed.append(label)
                self.removals_found.update({label, record.get("ModelId")})
                continue
            retained.append(label)
            if record.get("Fingerprint") != self._fingerprint_of(record, runs, sequence, fingerprint_runs):
                different.append(label)
        where = f"sub-{subject} task-{task}"
        if retained:
            LOGGER.warning("%s: kept the results of %s, not named in --models%s (--remove-models %s removes them)",
                           where, ", ".join(retained),
                           f"; {', '.join(different)} fitted with other settings, inputs or code than this run: the "
                           "group level would compare models fitted differently" if different else "",
                           " ".join(retained))
        if removed:
            LOGGER.warning("%s: removed the results of %s (--remove-models); group/ still describes them until you "
                           "rerun the group level", where, ", ".join(removed))
        return retained, removed

    def _fingerprint_of(self, record, runs, sequence, fingerprint_runs):
        """The fingerprint a committed model would have with this run's settings (None when its model cannot be
        read back from the record)."""
        try:
            spec = parse_model_spec(str(record.get("ModelId")))
            return fit_fingerprint(self.config, fingerprint_runs or runs, sequence,
                                   [self.extractor.record(spec, stimulus.cache_key) for stimulus in sequence.stimuli],
                                   {**self.ridge_record, **self.cv_scheme(len(sequence.groups))}, self.significance)
        except (BidsAppError, OSError, ValueError):  # a model that is gone: its settings cannot be compared
            return None

    def group(self, task, subjects):
        """For participants fitted together: the specs to fit (those any of them needs), the models each keeps
        as committed, the fit records of each, and the layer checkpoints."""
        needed = {spec for subject in subjects for spec in self.to_fit[(subject, task)]}
        specs = [spec for spec in self.specs if spec in needed]
        adopted = {subject: [label for label in self.kept[(subject, task)] if label not in {s.label for s in specs}]
                   for subject in subjects}
        fits = {subject: self.fits[(subject, task)] for subject in subjects}
        checkpoints = None if self.config.recompute else {
            spec: LayerCheckpoint(self.config.work_dir, [(subject, task, fits[subject][spec.label]["Fingerprint"])
                                                         for subject in subjects])
            for spec in specs}
        return specs, adopted, fits, checkpoints


def run_participant_level(config):
    """Run the participant level for every selected participant and task.

    Returns
    -------
    str
        A one-line summary.
    """
    if config.cleaning.grid is None:
        return _participant_level(config)
    # a procedure's resampled runs, kept between their readings by this run alone, removed at its end
    folder = Path(tempfile.mkdtemp(prefix="resampled-", dir=_made(config.work_dir)))
    try:
        return _participant_level(replace(config, resampled_dir=folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _made(folder):
    Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


def _participant_level(config):
    start = time.time()
    selected = collect_runs(config)
    if config.average and AVERAGE_LABEL in {subject for subject, _ in selected}:
        raise UsageError(f"--average-participants writes sub-{AVERAGE_LABEL}, but the dataset has a participant "
                         f"labelled {AVERAGE_LABEL}: leave it out with --participant-label")
    specs = _model_specs(config.models)
    if config.neurons:
        from bids_encoding.neurons.atlas import check_atlas

        check_atlas(config.neurons.atlas, [runs[0].space or config.space or "orig" for runs in selected.values()])
    write_dataset_description(config.output_dir, config.bids_dir)
    sequences = stimulus_sequences(selected, config)
    stimuli = distinct_stimuli(sequences.values())
    LOGGER.info("%d participant(s), %d run(s), %d distinct stimuli, %d model(s)",
                len({s for s, _ in selected}), sum(map(len, selected.values())), len(stimuli), len(specs))
    extractor = feature_extractor(config)
    cache = extractor.cache
    plan = FitPlan(config, specs, extractor)
    by_signature, by_stimuli = {}, {}
    for (subject, task), runs in selected.items():
        sequence = sequences[(subject, task)]
        if plan.add(subject, task, runs, sequence):
            by_signature.setdefault((task, stimulus_signature(runs, sequence, config)), []).append((subject, runs))
        by_stimuli.setdefault((task, stimulus_signature(runs, sequence, config, censoring=False)), []).append(
            (subject, runs))
    averages = []
    for (task, _), members in by_stimuli.items() if config.average else ():
        sequence = sequences[(members[0][0], task)]
        if len(members) < 2:
            LOGGER.warning("--average-participants: sub-%s is the only participant who heard the stimuli of "
                           "task-%s with these scans: no average", members[0][0], task)
        elif plan.add(AVERAGE_LABEL, task, members[0][1], sequence, [run for _, runs in members for run in runs]):
            averages.append((task, members, sequence))
    needed = {spec for specs_to_fit in plan.to_fit.values() for spec in specs_to_fit}
    model_features = {spec: extractor.features(spec, stimuli.values()) for spec in specs if spec in needed}
    neurons = {spec: partial(extractor.neurons, spec) for spec in model_features
               if config.neurons and not spec.is_baseline}

    best = []
    for (task, _), members in by_signature.items():
        for batch in _batches(members, config):
            LOGGER.info("fitting %s task-%s together (%d runs)", ", ".join(f"sub-{s}" for s, _ in batch), task,
                        len(batch[0][1]))
            sequence = sequences[(batch[0][0], task)]
            batch_specs, adopted, fits, checkpoints = plan.group(task, [subject for subject, _ in batch])
            participants = _fit_and_write([partial(prepare_participant, subject, task, runs, config, sequence)
                                           for subject, runs in batch],
                                          {spec: model_features[spec] for spec in batch_specs}, config, sequence,
                                          fits, checkpoints, adopted, neurons)
            best.extend(row["mean_r_top10"] for p in participants for row in p.rows if row["layer"] == "best")
    for task, members, sequence in averages:
        batch_specs, adopted, fits, checkpoints = plan.group(task, [AVERAGE_LABEL])
        _fit_and_write([partial(average_participant, members, task, config, sequence)],
                       {spec: model_features[spec] for spec in batch_specs}, config, sequence, fits, checkpoints,
                       adopted, neurons)
    for subject, task, space in plan.pruned:
        _keep_committed(config, subject, task, space, plan.fits[(subject, task)])
    for name in sorted(set(config.remove_models) - plan.removals_found):
        LOGGER.warning("--remove-models %s: no participant of this run has results of that model in %s (their "
                       "labels are in the scores tables' model column)", name, config.output_dir)
    skipped = sum(not specs_to_fit for specs_to_fit in plan.to_fit.values())
    return (f"done in {time.time() - start:.0f} s: {len(selected)} participant-task(s), {len(specs)} model(s)"
            + (f", {skipped} already complete" if skipped else "")
            + f"; features {cache.hits} reused, {cache.misses} computed"
            + (f"; best-layer top-10% mean r {np.mean(best):.3f}" if best else "")
            + f"; results in {config.output_dir}")


def extract_features(config):
    """Compute the features of every selected participant's stimuli for every model into the feature cache,
    fitting nothing (the GPU stage of a cluster study, before the participant jobs)."""
    start = time.time()
    stimuli = distinct_stimuli(stimulus_sequences(collect_runs(config), config).values())
    extractor = feature_extractor(config)
    cache = extractor.cache
    for spec in _model_specs(config.models):
        extractor.features(spec, stimuli.values())
    return (f"features of {len(stimuli)} stimuli for {len(config.models)} model(s) in {time.time() - start:.0f} s: "
            f"{cache.hits} reused, {cache.misses} computed; in {cache.root}")


def boilerplate_only(config):
    """Check the inputs and write the methods boilerplate for these settings (logs/CITATION.*), fitting
    nothing: model sizes come from their configurations (no weights are loaded)."""
    from dataclasses import asdict

    from bids_encoding.derivatives.staging import software_versions
    from bids_encoding.features.models import parameter_counts
    from bids_encoding.reports import write_boilerplate

    selected = collect_runs(config)
    ridge = build_ridge(config)
    n_stimuli = min(len(StimulusSequence.of_runs(runs, config.features.continuous).groups)
                    for runs in selected.values())
    sidecars = []
    for spec in _model_specs(config.models):
        model = {"Id": spec.model_id, "Revision": spec.revision, "Source": spec.source, "Untrained": spec.untrained}
        features = asdict(config.features)
        if spec.source != "baseline":
            counts = parameter_counts(spec, config.trust_remote_code)
            model.update(NumberOfParameters=counts["n_params"], NumberOfLayers=counts["n_layers"],
                         HiddenSize=counts["hidden_size"])
            features["window"] = features["window"] or counts.get("max_tokens")
            features["context"] = features["context"] or (features["window"] // 2 if features["window"] else None)
        sidecars.append({"Model": model, "Features": features, "Design": config.design.record(),
                         "Cleaning": config.cleaning.record(),
                         "Confounds": config.confounds.record() if config.confounds.strategy else None,
                         "BOLD": {"Mask": {"Source": "given"} if config.mask else None},
                         "Ridge": {**ridge_record(ridge), **cv_scheme_record(ridge, n_stimuli)},
                         "Significance": significance_record(config), "SoftwareVersions": software_versions()})
    write_boilerplate(config.output_dir / "logs", sidecars, n_participants=len({s for s, _ in selected}))
    return f"methods boilerplate written to {config.output_dir / 'logs' / 'CITATION.md'} (nothing fitted)"
