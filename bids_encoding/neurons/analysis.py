"""The participant level of the neurons-to-networks analysis, for one model and the participants fitted
together (they heard the same stimuli, so the neurons' time courses and patterns are shared; the maps and
network matches are each participant's).

1. Every feed-forward neuron's time course, written once to a memory-mapped file in the work folder.
2. Held-out accuracy: for each outer fold, patterns learned on the training runs only, their time courses
   extended to the held-out run (:func:`pattern_timecourses`), the pattern design fitted on the training
   runs and scored on the held-out run by the same nested ridge as the main fit.
3. The reported patterns: learned on every run, each neuron assigned to its strongest pattern; their weight
   maps (refit on every scan at each voxel's alpha), matched to the atlas's networks per participant.
"""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_encoding.neurons.atlas import network_atlas
from bids_encoding.neurons.measures import model_measures, neuron_networks
from bids_encoding.neurons.networks import match_networks
from bids_encoding.neurons.patterns import NeuronPatterns, assignment, oriented, pattern_timecourses
from bids_encoding.neurons.timecourses import NeuronTimecourses
from bids_encoding.ridge.scoring import zscore

LOGGER = logging.getLogger(__name__)
NPZ_ABOVE = 200_000  # neurons: above this, the assignments go to a compressed NPZ instead of a TSV


def _designs(series, lengths):
    """The patterns' time courses ``(n_patterns, n_scans)`` as one z-scored design per run."""
    return [zscore(part.T).astype(np.float32) for part in np.split(series, np.cumsum(lengths)[:-1], axis=1)]


def _learn(settings, store, scans=None):
    patterns = NeuronPatterns(settings.n_patterns, method=settings.method, alpha=settings.sparsity,
                              random_state=settings.seed)
    return patterns.fit(lambda: store.blocks(scans))


def held_out_scores(store, settings, ridge, responses, sequence, voxel_groups):
    """Per outer fold, the pattern model's held-out r and alphas with patterns learned on the training runs:
    ``(test_r, alpha)``, each ``(n_folds, n_voxels)``; ``None`` with a single stimulus (no held-out run)."""
    groups = sequence.groups
    if len(groups) < 2:
        return None
    test_r = np.full((len(groups), responses[0].shape[1]), np.nan, dtype=np.float32)
    alpha = np.full_like(test_r, np.nan)
    for fold, group in enumerate(groups):
        training = sorted(run for other in groups if other is not group for run in other)
        scans = store.scans_of(training)
        patterns = _learn(settings, store, scans)
        series = pattern_timecourses(patterns, zip(store.blocks(scans), store.blocks()))
        result = ridge.fit_score(_designs(series, store.run_lengths), responses, sequence.keys, folds=[fold],
                                 voxel_groups=voxel_groups)
        test_r[fold], alpha[fold] = result.test_r[fold], result.alpha[fold]
    return test_r, alpha


def _work_file(work_dir, spec, participants, sequence):
    key = hashlib.sha256(repr((spec.label, [p.subject for p in participants], sequence.keys)).encode())
    folder = Path(work_dir) / "neurons"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{spec.label}-{key.hexdigest()[:12]}.npy"


def memory_bound(courses, n_neurons, n_patterns, n_voxels, n_networks=17):
    """Bytes the analysis holds at once beyond the participants' BOLD (which the participant level holds
    anyway), from its largest stage:

    - writing the time courses: :meth:`NeuronTimecourses.memory_bound`;
    - learning and coding the patterns: a block of neurons' time courses as float64, four copies
      (standardized, permuted, the coder's products), the codes of every neuron (float32 and a float64 block);
    - the pattern fit and the network match: the pattern time courses and designs, four float64 copies of the
      weight maps (weights, standardized, one permutation) and the network indicators.
    """
    n_scans, block = courses.n_scans, courses.block
    learning = 4 * block * n_scans * 8 + block * n_patterns * 8 * 2
    fitting = 4 * n_scans * n_patterns * 8 + 4 * n_patterns * n_voxels * 8 + n_networks * n_voxels * 8
    return max(courses.memory_bound(), learning) + n_neurons * n_patterns * 4 + fitting


@dataclass(frozen=True)
class NeuronFit:
    """What the analysis found for the participants fitted together: the neurons (their layers and indices), the
    patterns' time courses, the neurons' codes and patterns, and the pattern model's held-out r and weights
    (``(n_patterns, n_voxels)`` over all participants' voxels)."""

    layers: list
    rows: tuple
    series: np.ndarray
    lengths: list
    codes: np.ndarray
    chosen: np.ndarray
    test_r: np.ndarray
    weights: np.ndarray
    held_out: bool


def analyse_neurons(batch, spec, model_info, neurons, sidecars):
    """Run the analysis for one model and write every participant's neuron outputs (staged with theirs).

    Parameters
    ----------
    batch : bids_encoding.participant.Batch
        The participants fitted together: their runs, responses, ridge and configuration.
    spec, model_info
        The model and its :class:`ModelInfo`.
    neurons : list of dict
        Per run of the sequence, ``{layer: (n_words, n_neurons)}`` from the feature cache.
    sidecars : dict
        ``{subject: sidecar}`` of the model's maps.

    Returns
    -------
    dict
        ``{subject: measures}``.
    """
    config, participants = batch.config, batch.participants
    fit = _fit(batch, spec, model_info, neurons)
    settings = config.neurons
    measures = {}
    for index, participant in enumerate(participants):
        if participant.on_surface:  # fMRIPrep's surface BOLD: fitted with the volume's, no network atlas there
            continue
        voxels = batch.voxels(index)
        atlas = network_atlas(settings.atlas, participant.output.space, participant.mask.img)
        matches = match_networks(fit.weights[:, voxels], atlas.labels, atlas.names, settings.n_permutations,
                                 settings.fdr, settings.seed)
        measures[participant.subject] = model_measures(matches, fit.chosen, settings.n_patterns)
        method = {**settings.record(), "Layers": fit.layers, "NumberOfNeurons": int(len(fit.chosen)),
                  "FeedForwardModule": model_info.ffn_module,
                  "PatternsScoredOn": "held-out runs; the patterns of each outer fold learned on its training runs "
                  "only" if fit.held_out else "one stimulus: patterns learned on every scan, scored on contiguous "
                  "held-out chunks"}
        _write(participant, spec.label, {**sidecars[participant.subject], "Layer": "neurons", "NeuronPatterns": method},
               fit, voxels, batch.runs, (atlas, matches, measures[participant.subject]))
    return measures


def _fit(batch, spec, model_info, neurons):
    """The neurons' time courses, patterns and codes, and the pattern model's fit (:class:`NeuronFit`)."""
    config, runs, sequence, ridge = batch.config, batch.runs, batch.sequence, batch.ridge
    settings = config.neurons
    courses = NeuronTimecourses(neurons, batch.word_matrices, [run.repetition_time for run in runs], config.design,
                                config.cleaning, [run.confounds for run in runs]
                                if any(run.confounds is not None for run in runs) else None, block=settings.block)
    layers = [layer for layer in model_info.layers if layer > 0]
    path = _work_file(config.work_dir, spec, batch.participants, sequence)
    store = courses.store(path, layers)
    LOGGER.info("%s: %d feed-forward neurons of %d layer(s) over %d scans (memory bound of the time courses "
                "%.0f MB)", spec.label, len(store.array), len(layers), store.array.shape[1],
                courses.memory_bound() / 1e6)
    lengths, rows = store.run_lengths, (store.layers, store.neurons)
    voxel_groups = [p.n_voxels for p in batch.participants]
    try:
        held_out = held_out_scores(store, settings, ridge, batch.responses, sequence, voxel_groups)
        scored_on_held_out = held_out is not None
        final = _learn(settings, store)
        codes = np.empty((len(store.array), settings.n_patterns), dtype=np.float32)
        row = 0
        for block in store.blocks():
            codes[row:row + len(block)] = final.transform(block)
            row += len(block)
        series, codes, _ = oriented(final.patterns_, codes)
        designs = _designs(series, lengths)
        if held_out is None:
            result = ridge.fit_score(designs, batch.responses, sequence.keys, voxel_groups=voxel_groups)
            held_out = (result.test_r, result.alpha)
        test_r, alphas = held_out
        alpha = np.exp(np.nanmean(np.log(alphas), axis=0))
        weights = ridge.weights(designs, batch.responses, alpha).astype(np.float32)
    finally:
        del store
        path.unlink(missing_ok=True)
    return NeuronFit(layers, rows, series, lengths, codes, assignment(codes), test_r, weights, scored_on_held_out)


def _write(participant, label, sidecar, fit, voxels, runs, networks):
    """One participant's neuron outputs; ``networks``: ``(atlas, matches, measures)``."""
    atlas, matches, measures = networks
    output, method = participant.output, sidecar["NeuronPatterns"]
    output.write_map(np.nanmean(fit.test_r[:, voxels], axis=0), {**sidecar, "Description": "Pearson r of the neuron "
                     "patterns' encoding model on held-out runs, mean over outer folds"}, model=label, desc="neurons",
                     stat="r")
    output.write_map(fit.weights[:, voxels], {**sidecar, "Description": "Ridge weight of each pattern (one volume "
                     "per pattern, in order), refit on every scan at each voxel's alpha (geometric mean over outer "
                     "folds)"}, model=label, desc="neurons", stat="weight")
    columns = [f"pattern{k:02d}" for k in range(len(fit.series))]
    output.write_table(pd.DataFrame(fit.series.T, columns=columns), output.name("timeseries", ".tsv", model=label,
                       desc="neurons"), {"Description": "Time course of each neuron pattern (dictionary atom, unit "
                                         "norm, signed so that its neurons follow it positively) at the scans of "
                                         "every run, runs in order, trimmed and censored as the fit",
                                         "Runs": [run.bold_path.name for run in runs],
                                         "ScansPerRun": list(fit.lengths),
                                         "RepetitionTime": runs[0].repetition_time, "NeuronPatterns": method})
    chosen, codes = fit.chosen, fit.codes
    assigned = neuron_networks(chosen, matches)
    table = pd.DataFrame({"layer": fit.rows[0], "neuron": fit.rows[1], "pattern": chosen,
                          "coefficient": codes[np.arange(len(chosen)), np.maximum(chosen, 0)] * (chosen >= 0),
                          "network": [network if network is not None else "n/a" for network in assigned]})
    description = {"Description": "Each feed-forward neuron's pattern (the largest absolute code; -1: none), its "
                   "coefficient, and the network its pattern matches (n/a: none)", "NeuronPatterns": method}
    if len(table) > NPZ_ABOVE:
        name = output.name("assignments", ".npz", model=label, desc="neurons")
        np.savez_compressed(output.path(name), **{key: table[key].to_numpy() for key in table})
        output.write_json(name.sidecar, description)
    else:
        output.write_table(table, output.name("assignments", ".tsv", model=label, desc="neurons"), description)
    output.write_table(matches, output.name("networks", ".tsv", model=label, desc="neurons"), {
        "Description": "Each pattern's best-matching network: spatial correlation of its weight map with the "
                       "network's indicator, Dice of its strongest 10% voxels, permutation p of the best match "
                       "(voxels permuted), Benjamini-Hochberg q over patterns; matched when q <= the FDR level",
        "Atlas": atlas.record, "Measures": measures, "NeuronPatterns": method})
