"""A batch: participants who heard the same stimuli, fitted together. Their voxels are concatenated and share one
design per layer, so everything that depends on the design alone is computed once."""

import logging
import time
from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from bids_encoding.derivatives.sidecars import cv_scheme_record
from bids_encoding.errors import BadDataError, UsageError
from bids_encoding.participant.outputs import MapContext, model_columns, score_row, write_layer_maps
from bids_encoding.participant.record import features_record, model_record
from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.ridge.layers import BestLayer, LayerFit
from bids_encoding.ridge.memory import Compute
from bids_encoding.ridge.significance import voxel_pvalues

LOGGER = logging.getLogger(__name__)
LAYER_CHOICE = "per voxel and outer fold, the layer with the best inner-validation score at the alpha used (never " \
               "the test data)"


def build_ridge(config):
    """The ridge estimator described by the configuration."""
    compute = Compute(device=config.device, dtype=getattr(torch, config.ridge_dtype), mem=config.mem,
                      voxel_chunk=config.voxel_chunk, tf32=config.tf32)
    return NestedRidgeCV(config.alphas, inner_cv=config.inner_cv, alpha_per_voxel=config.alpha_per_voxel,
                         alpha_score=config.alpha_score, rank=config.ridge_rank, compute=compute)


class Batch:
    """The shared state of participants fitted together: their runs (the same words, timings and scans), their
    responses side by side, the ridge and the outer folds.

    Parameters
    ----------
    participants : list of Participant
    sequence : StimulusSequence
    config : ParticipantConfig
    """

    def __init__(self, participants, sequence, config):
        self.participants, self.sequence, self.config = participants, sequence, config
        self.runs = participants[0].runs
        self.label = ",".join(dict.fromkeys(f"sub-{p.subject}" for p in participants))
        self.ridge = build_ridge(config)
        self.n_folds, self.repeated_folds, self.test_fold = self._folds()
        self.offsets = np.cumsum([0] + [p.n_voxels for p in participants])
        self.responses = [np.concatenate([p.responses[k] for p in participants], axis=1)
                          for k in range(len(self.runs))]
        self.word_matrices = [config.design.word_matrix(run.words, run.n_scans, run.repetition_time)
                              for run in self.runs]
        self.layer_validation = {}  # {model label: {layer: mean inner-validation score per outer fold}}

    def _folds(self):
        """``(n_folds, repeated_folds, test_fold)``: the outer folds fitted, those that test a repeated stimulus,
        and the one fold of a fixed test stimulus (``None``: all folds)."""
        groups, repeated_folds, n_folds = self.sequence.groups, self.sequence.repeated_folds, len(self.sequence.groups)
        if len(groups) < 3:
            LOGGER.warning("%s task-%s: %d distinct stimulus/stimuli: %s", self.label, self.participants[0].task,
                           len(groups), cv_scheme_record(self.ridge, len(groups))["Fallback"])
        if len(groups) == 1:
            n_folds = self.ridge.outer_chunks
            repeated_folds = list(range(n_folds)) if repeated_folds else []
        if self.config.test_stimulus and len(groups) < 2:
            raise UsageError(f"--procedure {self.config.procedure} tests on one held-out stimulus, but the runs of "
                             f"{self.label} present a single stimulus ({self.runs[0].bold_path.name}, ...): use "
                             "--procedure default (chunks of it are the folds)")
        test_fold = self.sequence.test_fold(self.config.test_stimulus)
        if test_fold is not None:
            n_folds, repeated_folds = 1, [0] if test_fold in repeated_folds else []
        return n_folds, repeated_folds, test_fold

    @property
    def tested(self):
        """Whether voxels get p-values (``--pvalue-method`` other than ``none``): the held-out predictions are kept."""
        return self.config.pvalue_method != "none"

    def voxels(self, index):
        """The voxels of the ``index``-th participant among the batch's."""
        return slice(self.offsets[index], self.offsets[index + 1])

    def write_ceilings(self):
        for participant in self.participants:
            if participant.ceiling is not None:
                participant.output.write_map(participant.ceiling, {
                    "Description": "Noise ceiling CC_max from repeated stimuli (Schoppe et al. 2016)",
                    "RepeatedStimuli": [participant.runs[run].bold_path.name
                                        for group in self.sequence.repeated_groups for run in group]},
                    stat="ccmax")

    def sidecars(self, spec, model_info, records):
        """``{subject: sidecar}`` of a model's maps, from each participant's :class:`FitRecord` (``records``)."""
        config = self.config
        model, features = model_record(spec, model_info, config.placement), features_record(config.features,
                                                                                            model_info)
        return {p.subject: records[p.subject].with_model(model, features).for_participant(
                    p.runs, self.sequence, config, p.mask.record(config.bids_dir), p.average_of).sidecar()
                for p in self.participants}

    def fit_model(self, spec, model_features, records, checkpoint=None):
        """Fit every layer of one model, write the participants' maps and score rows; the model's sidecars.

        ``model_features``: ``(features, model_info)``; ``records``: ``{subject: FitRecord}``; ``checkpoint``
        (a :class:`LayerCheckpoint`) keeps each finished layer for a rerun after a stop, and gives back those a
        stopped run finished."""
        features, model_info = model_features
        sidecars = self.sidecars(spec, model_info, records)
        columns = model_columns(spec, model_info)
        finished, state = checkpoint.load() if checkpoint is not None else ({}, None)
        if finished:
            LOGGER.info("%s %s: %d layer fit(s) of a stopped run reused from %s", self.label, spec.label,
                        len(finished), checkpoint.folder)
        done = sorted(finished)
        bar = tqdm(total=len(model_info.layers) * self.n_folds, desc=f"fit {self.label} {spec.label}", unit="fold",
                   disable=not self.config.progress, leave=False)
        best = BestLayer.from_state(state)
        progress = LayerProgress(f"{self.label} {spec.label}", len(model_info.layers) - len(finished),
                                 self.config.progress)
        fit = None
        for layer in model_info.layers:
            fit = finished.get(layer)
            if fit is None:
                bar.set_postfix_str(f"layer {layer}")
                fit = self.fit_layer(features, layer, best, lambda: bar.update(1))
                done.append(layer)
                if checkpoint is not None:
                    checkpoint.save(layer, fit, best.state(), done)
                progress.fitted(layer)
            self.layer_validation.setdefault(spec.label, {})[layer] = np.nanmean(fit.validation, axis=1)
            self._write(spec, layer, fit, {subject: {**_with_forms(sidecar, fit.forms), "Layer": layer}
                                           for subject, sidecar in sidecars.items()}, columns)
        bar.close()
        pvalues = voxel_pvalues(best.predictions, best.targets, self.config.pvalue_method,
                                self.config.n_permutations) if self.tested else None
        best_fit = LayerFit(best.test_r, best.test_r2, None, best.validation, pvalues)
        best_sidecars = {subject: {**_with_forms(sidecar, fit.forms), "Layer": "best", "LayerChoice": LAYER_CHOICE}
                         for subject, sidecar in sidecars.items()}
        self._write(spec, "best", best_fit, best_sidecars, columns, best.most_chosen_layer(model_info.layers))
        if self.config.data_scaling is not None:
            self._data_scaling(spec, features, sidecars)
        return sidecars

    def _data_scaling(self, spec, features, sidecars):
        """``--data-scaling`` at the model's layer with the best mean inner-validation score: each participant's
        ``_datascaling.tsv``."""
        from bids_encoding.participant.datascaling import DATA_SCALING_COLUMNS, data_scaling_rows

        scores = self.layer_validation[spec.label]
        layer = max(scores, key=lambda k: np.nanmean(scores[k]))
        tables = data_scaling_rows(self, self.run_designs(features, layer), layer, self.config.data_scaling)
        for participant in self.participants:
            if participant.on_surface:
                continue
            output = participant.output
            output.write_table(tables[participant.subject], output.name("datascaling", ".tsv", model=spec.label), {
                **DATA_SCALING_COLUMNS, "Description": "Held-out scores of each outer fold refitted on random subsets "
                "of its training stimuli (the mean over the participant's mask)", "Layer": layer,
                "DataScaling": self.config.data_scaling.record(), "Model": sidecars[participant.subject]["Model"]})

    def fit_joint(self, spec, model_features, records):
        """Fit a joint model (:class:`~bids_encoding.features.joint.JointSpec`) of spaces whose features are in
        ``model_features`` (``{spec: (features, ModelInfo)}``); write its maps and score rows."""
        from bids_encoding.participant.joint import JointModelFit, joint_maps, joint_rows

        info = model_features[(spec.language_models or spec.spaces)[0]][1]
        LOGGER.info("%s %s: joint model of %s (%s)", self.label, spec.label,
                    ", ".join(space.label for space in spec.spaces), spec.settings.solver)
        # penalties chosen on R² (JointSettings.score): split R² and unique variance need predictions on the data's
        # scale, which alphas chosen on r (--alpha-score r) do not give
        ridge = build_ridge(replace(self.config, alpha_score=spec.settings.score))
        result = JointModelFit(self, spec, model_features, ridge).run()
        sidecars = self.sidecars(spec, info, records)
        columns = model_columns(spec, info)
        for index, participant in enumerate(self.participants):
            voxels = self.voxels(index)
            sidecar = {**sidecars[participant.subject], "JointModel": spec.record(result.layers)}
            for values, entities, description in joint_maps(result, spec):
                participant.output.write_map(values[voxels], {**sidecar, "Description": description},
                                             model=spec.label, **entities)
            participant.rows.extend(joint_rows(result, spec, columns, voxels, participant.hemispheres))
        return sidecars

    def _write(self, spec, layer, fit, sidecars, columns, chosen_layers=None):
        """One layer's maps and score rows for every participant (with the best layer: ``chosen_layers``)."""
        for index, participant in enumerate(self.participants):
            voxels = self.voxels(index)
            sidecar = {**sidecars[participant.subject], **self._shared_alphas(fit.alpha, voxels)}
            write_layer_maps(participant, MapContext(fit, voxels, participant.ceiling, self.repeated_folds),
                             sidecar, spec.label, layer)
            if chosen_layers is not None:
                participant.output.write_map(chosen_layers[voxels], {**sidecar, "Description": "Layer chosen most "
                                             "often over outer folds"}, dtype=np.int16, model=spec.label,
                                             layer=layer, stat="layer")
            participant.rows.append(score_row(columns, layer, fit.voxels(voxels), participant.hemispheres))

    def _shared_alphas(self, alpha, voxels):
        """With one alpha shared by a participant's voxels, the alpha of each outer fold (``AlphaPerFold``)."""
        if alpha is None or self.config.alpha_per_voxel or voxels.stop <= voxels.start:
            return {}
        return {"AlphaPerFold": [float(value) for value in alpha[:, voxels.start]]}

    def designs(self, features, layer):
        """The design of each run at one layer, delayed for the ridge (:meth:`run_designs`, then across the stacked
        training runs where the design says so)."""
        designs, sequence = self.run_designs(features, layer), self.sequence
        if self.test_fold is not None:  # the training runs in the ridge's order (stimulus groups), then the test runs
            groups = sequence.groups
            train_runs = [run for fold, group in enumerate(groups) if fold != self.test_fold for run in group]
            return self.config.design.delayed_runs(designs, train_runs, groups[self.test_fold])
        if self.config.design.delays_across_runs:
            raise ValueError("delays across the stacked training runs need a fixed test stimulus (test_stimulus)")
        return designs

    def run_designs(self, features, layer):
        """Each run's design at one layer, in run order, before any delay across runs. Features per word are
        ``{layer: values}`` per stimulus; per audio frame (acoustic spaces, speech models), ``(frames, values)`` or
        ``(frames, {layer: values})``, the frames on the audio's clock."""
        config, sequence = self.config, self.sequence
        if isinstance(features[sequence.stimuli[0].cache_key], tuple):  # audio frames: acoustic spaces, speech
            values = []
            for stimulus, run in zip(sequence.stimuli, self.runs):
                frames, frame_values = features[stimulus.cache_key]
                frame_values = frame_values[layer] if isinstance(frame_values, dict) else frame_values
                values.append(config.design.resampled(frames.assign(onset=frames["onset"] + run.audio_origin),
                                                      frame_values, run.n_scans, run.repetition_time))
            matrices = [None] * len(self.runs)
        else:
            values = [features[stimulus.cache_key][layer] for stimulus in sequence.stimuli]
            matrices = self.word_matrices
        return [config.design.regressors(run_values, matrix, run.repetition_time, config.cleaning, run.confounds)
                for run_values, matrix, run in zip(values, matrices, self.runs)]

    def fit_layer(self, features, layer, best, progress=None):
        """Fit one layer (nested CV) and add it to ``best``: its :class:`LayerFit` (``features``: see
        :meth:`designs`)."""
        config, sequence = self.config, self.sequence
        try:
            result = self.ridge.fit_score(self.designs(features, layer), self.responses, sequence.keys,
                                          keep_predictions=self.tested, progress=progress,
                                          voxel_groups=[p.n_voxels for p in self.participants],
                                          folds=None if self.test_fold is None else [self.test_fold])
            if self.test_fold is not None:
                result = result.fold(self.test_fold)
        except MemoryError as error:
            raise UsageError(f"{error}: give more with --mem") from error
        except ValueError as error:
            if len(sequence.groups) > 1:
                raise
            raise BadDataError(f"{self.runs[0].bold_path}: {error}") from error
        pvalues = (voxel_pvalues(result.predictions, result.targets, config.pvalue_method, config.n_permutations)
                   if self.tested and config.pvalue_layers == "all" else None)
        best.update(layer, result)
        return LayerFit.of(result, pvalues)


def _with_forms(sidecar, forms):
    """The sidecar with the ridge form(s) that the fit used (``Ridge.FormUsed``)."""
    if not forms:
        return sidecar
    return {**sidecar, "Ridge": {**sidecar["Ridge"], "FormUsed": "/".join(forms)}}


class LayerProgress:
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
