"""Which models each participant (or average) still needs fitted: the :class:`FitRecord` of every participant and
model, and its fingerprint against the committed results' (:mod:`bids_encoding.derivatives.resume`)."""

import logging
from dataclasses import dataclass

from bids_encoding.derivatives.resume import (
    LayerCheckpoint,
    committed_fits,
    remove_committed_checkpoints,
    reusable_models,
    scores_fit_entry,
)
from bids_encoding.errors import BidsAppError
from bids_encoding.features import parse_model_spec
from bids_encoding.features.joint import is_joint
from bids_encoding.participant.batch import build_ridge
from bids_encoding.participant.record import FitRecord
from bids_encoding.participant.selection import space_of

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPlan:
    """For participants fitted together: the specs to fit (those any of them needs), the models each keeps as
    committed (``adopted``), the scores sidecars' ``Fits`` of each, their fit records and the layer
    checkpoints."""

    specs: list
    adopted: dict
    fits: dict
    records: dict
    checkpoints: dict | None


class FitPlan:
    """Which models each participant (or average) still needs fitted; with ``config.recompute``, all of them."""

    def __init__(self, config, specs, extractor):
        self.config, self.specs, self.extractor = config, specs, extractor
        self.ridge = build_ridge(config)
        self.fits, self.records, self.to_fit, self.kept, self.pruned = {}, {}, {}, {}, []
        self.removals_found = set()  # the --remove-models entries that named a committed result

    def _record(self, spec, runs, sequence, all_runs):
        spaces = spec.spaces if is_joint(spec) else (spec,)
        return FitRecord.of(self.config, spec, runs, sequence, self.ridge,
                            [self.extractor.record(space, stimulus.cache_key) for space in spaces
                             for stimulus in sequence.stimuli], all_runs)

    def add(self, subject, task, runs, sequence, all_runs=None):
        """Describe every model's fit for one participant (``all_runs``: an average's members' runs); returns the
        specs to fit (possibly none)."""
        records = {spec.label: self._record(spec, runs, sequence, all_runs) for spec in self.specs}
        fingerprints = {label: record.fingerprint() for label, record in records.items()}
        committed = committed_fits(self.config.output_dir, subject, task, space_of(runs, self.config))
        reusable = set() if self.config.recompute else reusable_models(committed, fingerprints, subject, task,
                                                                        self.config.output_dir)
        retained, removed = self._not_named(subject, task, committed, fingerprints, (runs, sequence, all_runs))
        key = (subject, task)
        self.records[key] = records
        self.fits[key] = {**{spec.label: scores_fit_entry(fingerprints[spec.label], spec.model_id)
                             for spec in self.specs},
                          **{label: committed[label] for label in retained}}
        to_fit = {spec for spec in self.specs if spec.label not in reusable}
        for joint in [spec for spec in to_fit if is_joint(spec) and spec.settings.layer == "best"]:
            to_fit.update(joint.language_models)  # their own fits choose the joint model's layer
        self.to_fit[key] = [spec for spec in self.specs if spec in to_fit]
        reusable -= {spec.label for spec in to_fit}
        self.kept[key] = sorted(reusable) + retained
        if removed and not self.to_fit[key]:
            self.pruned.append((subject, task, space_of(runs, self.config)))  # rewritten without them
        for label in reusable:
            remove_committed_checkpoints(self.config.work_dir, subject, task, fingerprints[label])
        if reusable:
            LOGGER.info("sub-%s task-%s: complete results with the same settings, inputs and code in %s for %s: "
                        "kept (--recompute fits them again)", subject, task, self.config.output_dir,
                        ", ".join(sorted(reusable)))
        return self.to_fit[key]

    def _not_named(self, subject, task, committed, fingerprints, inputs):
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
            if record.get("Fingerprint") != self._fingerprint_of(record, *inputs):
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

    def _fingerprint_of(self, committed, runs, sequence, all_runs):
        """The fingerprint a committed model would have with this run's settings (None when its model cannot be
        read back from its entry)."""
        try:
            return self._record(parse_model_spec(str(committed.get("ModelId"))), runs, sequence, all_runs).fingerprint()
        except (BidsAppError, OSError, ValueError):  # a model that is gone: its settings cannot be compared
            return None

    def group(self, task, subjects):
        """The :class:`BatchPlan` of participants fitted together."""
        needed = {spec for subject in subjects for spec in self.to_fit[(subject, task)]}
        specs = [spec for spec in self.specs if spec in needed]
        adopted = {subject: [label for label in self.kept[(subject, task)] if label not in {s.label for s in specs}]
                   for subject in subjects}
        fits = {subject: self.fits[(subject, task)] for subject in subjects}
        records = {spec: {subject: self.records[(subject, task)][spec.label] for subject in subjects}
                   for spec in specs}
        checkpoints = None if self.config.recompute else {
            spec: LayerCheckpoint(self.config.work_dir, [(subject, task, fits[subject][spec.label]["Fingerprint"])
                                                         for subject in subjects])
            for spec in specs}
        return BatchPlan(specs, adopted, fits, records, checkpoints)
