"""One description of a fit: :class:`FitRecord`, from which the sidecars, the rerun fingerprint and the methods
text all come.

A new setting that shapes a fit is one field here: :meth:`FitRecord.sidecar` writes it,
:meth:`FitRecord.fingerprint` hashes it (a changed value refits), :meth:`FitRecord.methods` describes it
(``tests/test_record.py`` checks that every fingerprinted field is also written).
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from bids_encoding.derivatives.resume import computation_versions, file_state
from bids_encoding.derivatives.sidecars import (
    cv_scheme_record,
    ridge_record,
    run_record,
    significance_record,
    source_path,
    test_stimulus_record,
)
from bids_encoding.derivatives.staging import software_versions
from bids_encoding.procedures import procedure

PARAMETER_COUNT = ("NumberOfParameters: the model as published, language-model head included (the scaling fits "
                   "use it); WithoutHead: the transformer that gives the features; NonEmbedding: that transformer "
                   "without its embedding tables")
# the fingerprint's fields that the sidecar holds under another name
FINGERPRINT_IN_SIDECAR = {"Stimuli": "Runs", "Mask": "BOLD"}


def model_record(spec, info, placement):
    """The sidecars' ``Model``: the model's identity, its size and how it was run."""
    return {"Id": spec.model_id, "Revision": spec.revision, "Source": spec.source, "Location": spec.location,
            "Label": spec.label, "Untrained": spec.untrained, "Type": info.model_type,
            "NumberOfParameters": info.n_params, "NumberOfParametersWithoutHead": info.n_params_no_head,
            "NumberOfParametersNonEmbedding": info.n_params_non_embedding, "ParameterCount": PARAMETER_COUNT,
            "NumberOfLayers": info.n_layers, "HiddenSize": info.hidden_size, "DType": info.dtype,
            "Placement": placement.record()}


def features_record(settings, info):
    """The sidecars' ``Features``: the settings, with the model's window plan and layers."""
    return {**asdict(settings), "window": info.window, "context": info.context,
            "right_context": info.right_context, "layers": list(info.layers),
            "LayerIndexing": "0 = embeddings, k = block k",
            **({"Speech": info.speech} if info.speech else {})}


@dataclass(frozen=True)
class FitRecord:
    """Everything that shapes one participant's (or one average's) fit of one model, as written and hashed.

    Built by :meth:`of` when the fits are planned (before any feature is computed); the model's size
    (:meth:`with_model`) and what the preparation found (:meth:`for_participant`) are added as they become
    known. Dictionaries are the sidecar's own values, so the three views cannot disagree.
    """

    procedure: str
    model: dict
    features: dict
    feature_cache: tuple  # per stimulus, the feature cache's record of the features (hashed)
    design: dict
    cleaning: dict
    confounds: dict | None
    bold: dict  # Mask (once prepared), Derivatives, Resolution
    mask_inputs: tuple  # what the mask is made from: the given mask file, the EPI cutoff, space, resolution
    ridge: dict
    significance: dict | None
    neurons: dict | None
    runs: tuple  # the sidecar's record of each run (notes included once prepared)
    run_files: tuple  # the state of every file the result depends on (all members' runs for an average)
    stimuli: tuple
    cross_validation: dict
    left_out_runs: tuple
    sources: tuple
    average_of: tuple | None = None
    joint: dict | None = None  # a joint model's spaces and solver (JointSpec.record)
    data_scaling: dict | None = None  # --data-scaling's subsets (DataScaling.record)
    versions: dict = field(default_factory=computation_versions)

    @classmethod
    def of(cls, config, spec, runs, sequence, ridge, feature_cache, all_runs=None):
        """The record of fitting ``spec`` to these runs with this configuration; ``all_runs``: every run the
        result depends on (an average's members' runs)."""
        return cls(
            procedure=config.procedure,
            model={"Id": spec.model_id, "Revision": spec.revision, "Source": spec.source, "Untrained": spec.untrained},
            features=asdict(config.features),
            feature_cache=tuple(feature_cache),
            design=config.design.record(),
            cleaning=(config.average_cleaning if all_runs else config.cleaning).record(),
            confounds=config.confounds.record() if config.confounds.strategy else None,
            bold={"Mask": {"Source": "given"} if config.mask else None,
                  "Derivatives": [str(path) for path in config.derivatives or []] or None,
                  "Resolution": config.resolution},
            mask_inputs=(file_state(config.mask), config.epi_mask_cutoff, config.space, config.resolution),
            ridge={**ridge_record(ridge), **cv_scheme_record(ridge, len(sequence.groups)),
                   **test_stimulus_record(runs, sequence, config.test_stimulus)},
            significance=significance_record(config),
            neurons=config.neurons.record() if config.neurons else None,
            runs=tuple(run_record(run, key, config) for run, key in zip(runs, sequence.keys)),
            run_files=tuple((file_state(run.bold_path), file_state(run.events_path), run.n_scans,
                             run.repetition_time, run.origin, file_state(getattr(run.confounds, "path", None)),
                             file_state(run.brain_mask), *((file_state(run.audio), run.audio_origin) if run.audio
                                                           else ())) for run in all_runs or runs),
            stimuli=tuple(sequence.keys),
            cross_validation={"Unit": config.cv_unit or "run", "StimulusSpecification": config.stimuli,
                              "Tasks": sorted({run.task for run in runs})},
            left_out_runs=tuple(sorted({name for run in runs for name in run.left_out})),
            joint=spec.record() if spec.source == "joint" else None,
            data_scaling=config.data_scaling.record() if config.data_scaling and spec.source != "joint" else None,
            sources=tuple([source_path(run.bold_path, config.bids_dir) for run in runs]
                          + sorted({source_path(run.events_path, config.bids_dir) for run in runs})))

    def with_model(self, model, features):
        """The record with the model's ``Model`` and ``Features`` (:func:`model_record`,
        :func:`features_record`), once its features are computed or its configuration read."""
        return replace(self, model=model, features=features)

    def for_participant(self, runs, sequence, config, mask, average_of=None):
        """The record with what the preparation found: each run's notes, the mask's record."""
        return replace(self, runs=tuple(run_record(run, key, config) for run, key in zip(runs, sequence.keys)),
                       bold={**self.bold, "Mask": mask}, average_of=tuple(average_of) if average_of else None)

    def sidecar(self):
        """What every map of this fit records; the group level reads the runs, trimming and cleaning back."""
        return {"Procedure": procedure(self.procedure).record(), "Model": self.model, "Features": self.features,
                "Design": self.design, "Cleaning": self.cleaning, "BOLD": self.bold, "Confounds": self.confounds,
                "Ridge": self.ridge, "Significance": self.significance,
                **({"Neurons": self.neurons} if self.neurons else {}),
                "Runs": [dict(run) for run in self.runs], "LeftOutRuns": list(self.left_out_runs),
                "CrossValidationUnit": self.cross_validation, "Sources": list(self.sources),
                "SoftwareVersions": software_versions(), "ComputationVersions": self.versions,
                **({"AverageOf": list(self.average_of)} if self.average_of else {}),
                **({"JointModel": self.joint} if self.joint else {})}

    def _hashed(self):
        payload = {
            "ComputationVersions": self.versions,
            "Features": list(self.feature_cache),
            "Stimuli": list(self.stimuli),
            "Runs": [list(files) for files in self.run_files],
            "Mask": list(self.mask_inputs),
            "Design": self.design,
            "Cleaning": self.cleaning,
            "Confounds": self.confounds,
            "CrossValidationUnit": self.cross_validation["Unit"],
            "Ridge": self.ridge,
            "Significance": self.significance,
            "Neurons": self.neurons,
        }
        if self.joint:
            payload["JointModel"] = self.joint
        if self.data_scaling:
            payload["DataScaling"] = self.data_scaling
        if self.procedure != "default":  # (payloads of the default keep their keys: their results stay valid)
            payload["Procedure"] = self.procedure
        return payload

    def fingerprint(self):
        """Hash of everything that shapes the fit (16 hexadecimal digits): a rerun keeps a committed result
        whose fingerprint is the same (:mod:`bids_encoding.derivatives.resume`)."""
        text = json.dumps(self._hashed(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def methods(self):
        """What the methods text (:func:`bids_encoding.reports.write_boilerplate`) reads."""
        sidecar = self.sidecar()
        return {key: sidecar.get(key) for key in ("Procedure", "Model", "Features", "Design", "Cleaning",
                                                  "Confounds", "BOLD", "Ridge", "Significance", "SoftwareVersions")}
