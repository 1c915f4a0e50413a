"""Participant level: inputs -> features -> design -> ridge -> outputs."""

import logging
import time
from dataclasses import asdict

import numpy as np
from tqdm.auto import tqdm

from bids_encoding.design import frame_times, hrf_design, word_response_matrix
from bids_encoding.errors import UsageError
from bids_encoding.features import FeatureCache, parse_model_spec
from bids_encoding.features.engine import FeatureExtractor, run_stimuli
from bids_encoding.inputs import load_layout, select_runs
from bids_encoding.inputs.bold import brain_mask, clean_run_bold
from bids_encoding.inputs.layout import select_subjects
from bids_encoding.outputs import (
    ParticipantOutput,
    hemisphere_masks,
    software_versions,
    summary_scores,
    write_dataset_description,
)
from bids_encoding.ridge import NestedRidgeCV

LOGGER = logging.getLogger(__name__)


def collect_runs(config):
    """Select and check every participant's runs before any heavy work.

    Returns
    -------
    dict
        ``{(subject, task): [Run, ...]}``
    """
    layout = load_layout(config.bids_dir, config.work_dir / "pybids", validate=config.validate)
    selected = {}
    for subject in select_subjects(layout, config.participant_labels):
        for task, runs in select_runs(layout, subject, config.task, config.space).items():
            selected[(subject, task)] = runs
    return selected


def _model_specs(models):
    specs = [parse_model_spec(model) for model in models]
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise UsageError(f"models {', '.join(models)} share the file label(s) {', '.join(duplicates)}: "
                         "give each model once, or rename a local directory")
    return specs


def _best_layer(results, layers):
    """Per outer fold, the layer with the best inner-validation r; never the test r.

    Returns
    -------
    best_r : array ``(n_voxels,)``
        Test r of the chosen layer, averaged over folds.
    chosen_layer : array ``(n_voxels,)``
        The layer chosen most often over folds (lowest on ties).
    """
    validation = np.stack([result.validation_r for result in results])  # (L, F, V)
    test = np.stack([result.test_r for result in results])
    choice = validation.argmax(axis=0)  # (F, V)
    best_r = np.take_along_axis(test, choice[None], axis=0)[0].mean(axis=0)
    counts = np.apply_along_axis(np.bincount, 0, choice, minlength=len(results))
    return best_r, np.asarray(layers)[counts.argmax(axis=0)]


def _base_sidecar(config, runs, spec, model_info):
    return {
        "Model": {"Id": spec.model_id, "Revision": spec.revision, "Source": spec.source,
                  "Location": spec.location, "Label": spec.label, "Untrained": spec.untrained,
                  "NumberOfParameters": model_info["n_params"],
                  "NumberOfParametersNonEmbedding": model_info["n_params_non_embedding"],
                  "NumberOfLayers": model_info["n_layers"], "HiddenSize": model_info["hidden_size"],
                  "DType": model_info["dtype"]},
        "Features": {**asdict(config.features), "window": model_info.get("window"),
                     "context": model_info.get("context"), "right_context": model_info.get("right_context"),
                     "layers": model_info["layers"], "LayerIndexing": "0 = embeddings, k = block k"},
        "Design": {**config.design.record(), "ZScore": "per run, after trimming"},
        "BOLD": {"Detrend": True, "HighPassHz": config.high_pass, "Standardize": "zscore per run",
                 "Mask": str(config.mask) if config.mask else "nilearn compute_multi_epi_mask"},
        "Ridge": {"Alphas": list(config.alphas), "AlphaChoice": "per voxel",
                  "OuterCV": "leave-one-run-out", "InnerCV": "leave-one-run-out over training runs",
                  "Score": "Pearson r on the held-out run, averaged over outer folds",
                  "Intercept": False, "Solver": "SVD (torch)", "Device": config.device},
        "Sources": [str(run.bold_path.relative_to(config.bids_dir)) for run in runs]
                   + sorted({str(run.events_path.relative_to(config.bids_dir)) for run in runs}),
        "SoftwareVersions": software_versions(),
    }


def fit_participant(subject, task, runs, model_features, config):
    """Fit and write every model and layer for one participant and task.

    Returns
    -------
    list of dict
        The rows of the participant's scores table.
    """
    mask_img = brain_mask([run.bold_path for run in runs], config.mask)
    trim = (config.design.trim_start, config.design.trim_end)
    responses = [clean_run_bold(run.bold_path, mask_img, run.repetition_time, *trim, config.high_pass)
                 for run in runs]
    left, right = hemisphere_masks(mask_img)
    space = runs[0].space or config.space or "orig"
    output = ParticipantOutput(config.output_dir, subject, task, space, mask_img)
    ridge = NestedRidgeCV(config.alphas, device=config.device, voxel_chunk=config.voxel_chunk)
    rows = []
    try:
        output.write_mask({"Description": "Brain mask of the fit", "Sources": [str(runs[0].bold_path)]})
        for spec, (features, model_info) in model_features.items():
            regressors = [
                word_response_matrix(run.words["onset"], run.words["duration"],
                                     frame_times(run.n_scans, run.repetition_time, config.design.frame_time_offset),
                                     config.design.hrf_model, config.design.oversampling)
                for run in runs
            ]
            fingerprints = [stimulus.fingerprint for stimulus in run_stimuli(runs, config.features.continuous)]
            layers = model_info["layers"]
            base = _base_sidecar(config, runs, spec, model_info)
            results = []
            bar = tqdm(total=len(layers) * len(runs), desc=f"fit sub-{subject} {spec.label}", unit="fold",
                       disable=not config.progress, leave=False)
            for layer in layers:
                designs = [hrf_design(features[fp][layer], response, config.design)
                           for fp, response in zip(fingerprints, regressors)]
                result = ridge.fit_score(designs, responses, progress=lambda: bar.update(1))
                results.append(result)
                sidecar = {**base, "Layer": layer}
                output.write_map(result.mean_r, {**sidecar, "Description": "Pearson r on held-out runs, "
                                                 "mean over leave-one-run-out folds"},
                                 model=spec.label, layer=layer, stat="r")
                output.write_map(np.exp(np.log(result.alpha).mean(axis=0)),
                                 {**sidecar, "Description": "Ridge alpha chosen by inner leave-one-run-out "
                                  "(geometric mean over outer folds)"},
                                 model=spec.label, layer=layer, stat="alpha")
                rows.append(_score_row(spec, model_info, layer, result.mean_r, left, right))
            bar.close()
            best_r, chosen = _best_layer(results, layers)
            best_sidecar = {**base, "Layer": "best", "LayerChoice": "per voxel and outer fold, the layer "
                            "with the best inner-validation r (the test run is never used)"}
            output.write_map(best_r, {**best_sidecar, "Description": "Pearson r of the best layer"},
                             model=spec.label, layer="best", stat="r")
            output.write_map(chosen, {**best_sidecar, "Description": "Layer chosen most often over folds"},
                             dtype=np.int16, model=spec.label, layer="best", stat="layer")
            rows.append(_score_row(spec, model_info, "best", best_r, left, right))
        output.write_scores(rows)
        output.commit()
    except BaseException:
        output.discard()
        raise
    return rows


def _score_row(spec, model_info, layer, r_map, left, right):
    return {"model": spec.label, "model_id": spec.model_id, "layer": layer,
            "n_params": model_info["n_params"], "n_params_non_embedding": model_info["n_params_non_embedding"],
            "n_layers": model_info["n_layers"], "hidden_size": model_info["hidden_size"],
            **summary_scores(r_map, left, right)}


def run_participant_level(config):
    """Run the participant level for every selected participant and task.

    Returns
    -------
    str
        A one-line summary.
    """
    start = time.time()
    selected = collect_runs(config)
    specs = _model_specs(config.models)
    write_dataset_description(config.output_dir, config.bids_dir)
    stimuli = {}
    for runs in selected.values():
        for stimulus in run_stimuli(runs, config.features.continuous):
            stimuli.setdefault(stimulus.fingerprint, stimulus)
    LOGGER.info("%d participant(s), %d run(s), %d distinct stimuli, %d model(s)",
                len({s for s, _ in selected}), sum(map(len, selected.values())), len(stimuli), len(specs))
    cache = FeatureCache(config.feature_cache_dir)
    extractor = FeatureExtractor(cache, config.features, device=config.device, dtype=config.dtype,
                                 trust_remote_code=config.trust_remote_code, progress=config.progress,
                                 ffn_neurons=config.ffn_neurons)
    model_features = {spec: extractor.features(spec, stimuli.values()) for spec in specs}
    best = []
    for (subject, task), runs in selected.items():
        LOGGER.info("fitting sub-%s task-%s (%d runs)", subject, task, len(runs))
        rows = fit_participant(subject, task, runs, model_features, config)
        best.extend(row["mean_r_top10"] for row in rows if row["layer"] == "best")
    return (f"done in {time.time() - start:.0f} s: {len(selected)} participant-task(s), {len(specs)} model(s); "
            f"features {cache.hits} reused, {cache.misses} computed; best-layer top-10% mean r "
            f"{np.mean(best):.3f}; results in {config.output_dir}")
