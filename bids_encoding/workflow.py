"""Participant level: inputs -> features -> design -> ridge -> outputs."""

import logging
import time
from dataclasses import asdict

import numpy as np
from tqdm.auto import tqdm

from bids_encoding.design import frame_times, hrf_design, word_response_matrix
from bids_encoding.errors import UsageError
from bids_encoding.features import (
    FeatureCache,
    extract_word_features,
    load_model,
    parse_model_spec,
    stimulus_fingerprint,
)
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
FEATURE_CODE_VERSION = 1


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


def _feature_record(spec, fingerprint, config):
    return {
        "stimulus": fingerprint,
        "model_id": spec.model_id,
        "model_revision": spec.revision,
        "model_source": spec.source,
        "model_label": spec.label,
        "dtype": config.dtype or "auto",
        "device_kind": "cuda" if config.device.startswith("cuda") else "cpu",
        "features": asdict(config.features),
        "feature_code": FEATURE_CODE_VERSION,
    }


def compute_features(spec, stimuli, cache, config):
    """Features of every distinct stimulus for one model, from the cache when possible.

    Parameters
    ----------
    spec : ModelSpec
    stimuli : dict
        ``{fingerprint: words DataFrame}``.
    cache : FeatureCache

    Returns
    -------
    features : dict
        ``{fingerprint: array (n_layers + 1, n_words, hidden)}``.
    model_info : dict
        Parameter count, layers, hidden size, feature settings.
    """
    features, model_info, loaded = {}, None, None
    for fingerprint, words in stimuli.items():
        record = _feature_record(spec, fingerprint, config)
        cached = cache.load(record)
        if cached is not None:
            features[fingerprint], info = cached
            LOGGER.info("reusing cached features of %s for stimulus %s (%s)",
                        spec.model_id, fingerprint, cache.path(record))
        else:
            if loaded is None:
                LOGGER.info("loading model %s (%s)", spec.model_id, spec.location)
                loaded = load_model(spec, device=config.device, dtype=config.dtype)
            array, info = extract_word_features(loaded, list(words["word"]), config.features,
                                                device=config.device, progress=config.progress)
            info["model"] = {"n_params": loaded.n_params, "n_layers": loaded.n_layers,
                             "hidden_size": loaded.hidden_size, "max_tokens": loaded.max_tokens,
                             "dtype": str(next(loaded.model.parameters()).dtype).replace("torch.", "")}
            features[fingerprint] = cache.save(record, array, info)
            LOGGER.info("computed features of %s for stimulus %s: %d words, %d tokens, %d windows",
                        spec.model_id, fingerprint, info["n_words"], info["n_tokens"], info["n_windows"])
        model_info = model_info or {**info["model"], "window": info["window"], "context": info["context"]}
    return features, model_info


def _best_layer(results):
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
    return best_r, counts.argmax(axis=0)


def _base_sidecar(config, runs, spec, model_info):
    return {
        "Model": {"Id": spec.model_id, "Revision": spec.revision, "Source": spec.source,
                  "Location": spec.location, "Label": spec.label,
                  "NumberOfParameters": model_info["n_params"], "NumberOfLayers": model_info["n_layers"],
                  "HiddenSize": model_info["hidden_size"], "DType": model_info["dtype"]},
        "Features": {**asdict(config.features), "window": model_info["window"],
                     "context": model_info["context"], "LayerIndexing": "0 = embeddings, k = block k"},
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
            fingerprints = [stimulus_fingerprint(run.words) for run in runs]
            n_layers = model_info["n_layers"] + 1
            base = _base_sidecar(config, runs, spec, model_info)
            results = []
            bar = tqdm(total=n_layers * len(runs), desc=f"fit sub-{subject} {spec.label}", unit="fold",
                       disable=not config.progress, leave=False)
            for layer in range(n_layers):
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
            best_r, chosen = _best_layer(results)
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
            "n_params": model_info["n_params"], "n_layers": model_info["n_layers"],
            "hidden_size": model_info["hidden_size"], **summary_scores(r_map, left, right)}


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
        for run in runs:
            stimuli.setdefault(stimulus_fingerprint(run.words), run.words)
    LOGGER.info("%d participant(s), %d run(s), %d distinct stimuli, %d model(s)",
                len({s for s, _ in selected}), sum(map(len, selected.values())), len(stimuli), len(specs))
    cache = FeatureCache(config.feature_cache_dir)
    model_features = {spec: compute_features(spec, stimuli, cache, config) for spec in specs}
    best = []
    for (subject, task), runs in selected.items():
        LOGGER.info("fitting sub-%s task-%s (%d runs)", subject, task, len(runs))
        rows = fit_participant(subject, task, runs, model_features, config)
        best.extend(row["mean_r_top10"] for row in rows if row["layer"] == "best")
    return (f"done in {time.time() - start:.0f} s: {len(selected)} participant-task(s), {len(specs)} model(s); "
            f"features {cache.hits} reused, {cache.misses} computed; best-layer top-10% mean r "
            f"{np.mean(best):.3f}; results in {config.output_dir}")
