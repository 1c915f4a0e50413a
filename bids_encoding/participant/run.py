"""The participant level, run: select the runs, plan the fits, compute the features, then prepare, fit, write and
commit each batch of participants who heard the same stimuli (and each average participant)."""

import logging
import shutil
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from bids_encoding.derivatives import ParticipantOutput, write_dataset_description
from bids_encoding.errors import UsageError
from bids_encoding.features.joint import is_joint
from bids_encoding.participant.batch import Batch, build_ridge
from bids_encoding.participant.preparation import AVERAGE_LABEL, average_participant, prepare_participant
from bids_encoding.participant.record import FitRecord
from bids_encoding.participant.reuse import FitPlan
from bids_encoding.participant.selection import (
    check_feature_inputs,
    collect_runs,
    distinct_stimuli,
    feature_extractor,
    model_specs,
    space_of,
    stimulus_sequences,
    stimulus_signature,
)
from bids_encoding.participant.surface import project_maps, surface_member
from bids_encoding.ridge.memory import memory_budget
from bids_encoding.stimuli import StimulusSequence

LOGGER = logging.getLogger(__name__)


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
    Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="resampled-", dir=config.work_dir))
    try:
        return _participant_level(replace(config, resampled_dir=folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _participant_level(config):
    start = time.time()
    selected = collect_runs(config)
    if config.average and AVERAGE_LABEL in {subject for subject, _ in selected}:
        raise UsageError(f"--average-participants writes sub-{AVERAGE_LABEL}, but the dataset has a participant "
                         f"labelled {AVERAGE_LABEL}: leave it out with --participant-label")
    specs = model_specs(config.models, config.joint_models, config.joint)
    extractor = feature_extractor(config)
    check_feature_inputs([spec for spec in specs if not is_joint(spec)], selected, extractor)
    if config.neurons:
        from bids_encoding.neurons.atlas import check_atlas

        check_atlas(config.neurons.atlas, [space_of(runs, config) for runs in selected.values()])
    write_dataset_description(config.output_dir, config.bids_dir)
    sequences = stimulus_sequences(selected, config)
    stimuli = distinct_stimuli(sequences.values())
    LOGGER.info("%d participant(s), %d run(s), %d distinct stimuli, %d model(s)",
                len({s for s, _ in selected}), sum(map(len, selected.values())), len(stimuli), len(specs))
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
    needed = {space for specs_to_fit in plan.to_fit.values() for spec in specs_to_fit
              for space in (spec.spaces if is_joint(spec) else (spec,))}
    model_features = {spec: extractor.features(spec, stimuli.values()) for spec in specs if spec in needed}
    neurons = {spec: partial(extractor.neurons, spec) for spec in model_features  # language models' neurons
               if config.neurons and not spec.is_baseline and not extractor.is_speech(spec)}
    best = []
    for (task, _), members in by_signature.items():
        for batch in _batches(members, config):
            LOGGER.info("fitting %s task-%s together (%d runs)", ", ".join(f"sub-{s}" for s, _ in batch), task,
                        len(batch[0][1]))
            sequence = sequences[(batch[0][0], task)]
            fitted = _fit_and_write([partial(prepare_participant, subject, task, runs, config, sequence)
                                     for subject, runs in batch], sequence, model_features, config,
                                    plan.group(task, [subject for subject, _ in batch]), neurons)
            best.extend(row["mean_r_top10"] for p in fitted for row in p.rows if row["layer"] == "best")
    for task, members, sequence in averages:
        _fit_and_write([partial(average_participant, members, task, config, sequence)], sequence, model_features,
                       config, plan.group(task, [AVERAGE_LABEL]), neurons)
    for subject, task, space in plan.pruned:
        _keep_committed(config, subject, task, space, plan.fits[(subject, task)])
    for name in sorted(set(config.remove_models) - plan.removals_found):
        LOGGER.warning("--remove-models %s: no participant of this run has results of that model in %s (their "
                       "labels are in the scores tables' model column)", name, config.output_dir)
    skipped = sum(not specs_to_fit for specs_to_fit in plan.to_fit.values())
    cache = extractor.cache
    return (f"done in {time.time() - start:.0f} s: {len(selected)} participant-task(s), {len(specs)} model(s)"
            + (f", {skipped} already complete" if skipped else "")
            + f"; features {cache.hits} reused, {cache.misses} computed"
            + (f"; best-layer top-10% mean r {np.mean(best):.3f}" if best else "")
            + f"; results in {config.output_dir}")


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


def _fit_and_write(preparers, sequence, model_features, config, planned, neurons=None):
    """Prepare the participants (each function makes one; they heard ``sequence``), fit the models of
    ``planned`` (a :class:`BatchPlan`) together, write and commit; nothing committed when anything fails.
    ``neurons``: ``{spec: function(cache_key, layers)}``, the feature cache's feed-forward activations of the
    models of the neurons analysis."""
    prepared = []
    try:
        for prepare in preparers:
            prepared.append(prepare())
        surfaces = [member for member in (surface_member(p, config, sequence) for p in prepared) if member]
        batch = Batch(prepared + surfaces, sequence, config)
        batch.write_ceilings()
        for spec in planned.specs:
            if is_joint(spec):
                batch.fit_joint(spec, model_features, planned.records[spec])
                continue
            sidecars = batch.fit_model(spec, model_features[spec], planned.records[spec],
                                       (planned.checkpoints or {}).get(spec))
            if config.neurons and spec in (neurons or {}):
                _neuron_analysis(batch, spec, model_features[spec][1], neurons[spec], sidecars)
        order = {label: index for index, label in enumerate(planned.fits[prepared[0].subject])}
        for participant in prepared:
            for label in planned.adopted.get(participant.subject, []):
                participant.rows.extend(participant.output.adopt(label))
            project_maps(participant.output, config)
            participant.rows.sort(key=lambda row: order[row["model"]])
            participant.output.write_scores(participant.rows, planned.fits[participant.subject])
            participant.output.commit()
    except BaseException:
        for participant in prepared:
            participant.output.discard()
        raise
    for checkpoint in (planned.checkpoints or {}).values():
        checkpoint.remove()
    return prepared


def _neuron_analysis(batch, spec, model_info, load, sidecars):
    from bids_encoding.neurons.analysis import analyse_neurons

    activations = [load(stimulus.cache_key, model_info.layers) for stimulus in batch.sequence.stimuli]
    if any(run is None for run in activations):
        raise UsageError(f"{spec.label}: the feature cache has no feed-forward neurons of every stimulus: rerun "
                         "with --ffn-neurons")
    LOGGER.info("%s %s: neuron patterns and networks", batch.label, spec.label)
    analyse_neurons(batch, spec, model_info, activations, sidecars)


def _keep_committed(config, subject, task, space, fits):
    """Rewrite a committed result with only the models of ``fits``, all kept as they are (a rerun with fewer
    models): the files of the models left out go."""
    with ParticipantOutput(config.output_dir, subject, task, space, None) as output:
        output.adopt()
        rows = [row for label in fits for row in output.adopt(label)]
        output.write_scores(rows, fits)


def extract_features(config):
    """Compute the features of every selected participant's stimuli for every model into the feature cache,
    fitting nothing (the GPU stage of a cluster study, before the participant jobs)."""
    start = time.time()
    selected = collect_runs(config)
    stimuli = distinct_stimuli(stimulus_sequences(selected, config).values())
    extractor = feature_extractor(config)
    cache = extractor.cache
    specs = model_specs(config.models)
    check_feature_inputs(specs, selected, extractor)
    for spec in specs:
        extractor.features(spec, stimuli.values())
    return (f"features of {len(stimuli)} stimuli for {len(config.models)} model(s) in {time.time() - start:.0f} s: "
            f"{cache.hits} reused, {cache.misses} computed; in {cache.root}")


def boilerplate_only(config):
    """Check the inputs and write the methods boilerplate for these settings (logs/CITATION.*), fitting
    nothing: model sizes come from their configurations (no weights are loaded). The methods come from the same
    :class:`FitRecord` as a run's sidecars."""
    from bids_encoding.features.models import parameter_counts
    from bids_encoding.reports import write_boilerplate

    selected = collect_runs(config)
    ridge = build_ridge(config)
    runs, sequence = min(((runs, StimulusSequence.of_runs(runs, config.features.continuous))
                          for runs in selected.values()), key=lambda pair: len(pair[1].groups))
    described = []
    for spec in model_specs(config.models):
        record = FitRecord.of(config, spec, runs, sequence, ridge, ())
        if spec.source != "baseline":
            counts = parameter_counts(spec, config.trust_remote_code)
            window = record.features["window"] or counts.get("max_tokens")
            record = record.with_model(
                {**record.model, "NumberOfParameters": counts["n_params"], "NumberOfLayers": counts["n_layers"],
                 "HiddenSize": counts["hidden_size"]},
                {**record.features, "window": window,
                 "context": record.features["context"] or (window // 2 if window else None)})
        described.append(record.methods())
    joints = [{"JointModel": spec.record()} for spec in model_specs(config.models, config.joint_models, config.joint)
              if is_joint(spec)]
    write_boilerplate(config.output_dir / "logs", described, n_participants=len({s for s, _ in selected}),
                      joints=joints)
    return f"methods boilerplate written to {config.output_dir / 'logs' / 'CITATION.md'} (nothing fitted)"
