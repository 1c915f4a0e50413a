"""A joint model of several feature spaces for a batch (``--joint-model``): each space's design at its layer, the
joint solver (banded ridge or stacking) in the batch's outer folds, the fits without each space (unique
variance), the maps and the score rows."""

import logging
from dataclasses import dataclass

import numpy as np

from bids_encoding.errors import UsageError
from bids_encoding.participant.outputs import score_row

LOGGER = logging.getLogger(__name__)


def joint_solver(settings, ridge):
    """The estimator of ``settings.solver`` (:class:`JointSettings`), with the alphas, inner CV, validation score
    and compute settings of ``ridge`` (a :class:`NestedRidgeCV`)."""
    if settings.solver == "stacking":
        from bids_encoding.ridge.stacking import StackedRidgeCV

        return StackedRidgeCV(ridge)
    from bids_encoding.ridge.banded import BandedRidgeCV

    return BandedRidgeCV(ridge.alphas, n_iter=settings.n_iter, inner_cv=ridge.inner_cv,
                         alpha_score=ridge.alpha_score, compute=ridge.compute, seed=settings.seed)


@dataclass
class JointResult:
    """A joint model's fit for the batch's voxels.

    Attributes
    ----------
    fit : CVResult
        The joint fit: ``test_r``, ``test_r2`` ``(n_folds, n_voxels)``; with the solver's per-space arrays
        (``split_r``, ``split_r2`` ``(n_spaces, n_folds, n_voxels)``, and penalties or stacking weights).
    unique_r2 : numpy.ndarray ``(n_spaces, n_folds, n_voxels)`` or None
        The joint R² minus the R² of the joint model without the space.
    layers : dict
        ``{space label: [layer of each outer fold]}`` for the language models.
    """

    fit: object
    unique_r2: np.ndarray | None
    layers: dict

    @property
    def shared_r2(self):
        """The joint R² that no space explains alone: the joint R² minus every space's unique R²."""
        return None if self.unique_r2 is None else self.fit.test_r2 - self.unique_r2.sum(axis=0)

    def space_weights(self):
        """``(name, description, (n_folds, n_spaces, n_voxels))``: each space's penalty (banded ridge) or
        stacking weight."""
        if hasattr(self.fit, "weights"):
            return "weight", "Stacking weight of the space's prediction (mean over outer folds)", self.fit.weights
        return ("penalty", "The space's ridge penalty, alpha / its kernel weight (geometric mean over outer folds)",
                self.fit.penalties)


class JointModelFit:
    """Fits one joint model for a batch.

    Parameters
    ----------
    batch : Batch
    spec : JointSpec
    model_features : dict
        ``{space spec: (features, ModelInfo)}`` of every space.
    ridge : NestedRidgeCV
        Its alphas, inner CV, validation score and compute settings are the joint solver's.
    """

    def __init__(self, batch, spec, model_features, ridge):
        self.batch, self.spec, self.model_features = batch, spec, model_features
        self.solver = joint_solver(spec.settings, ridge)

    def layers(self):
        """``{space label: [layer per outer fold]}``: ``--joint-layer``, or per fold the layer whose own fit
        has the best mean inner-validation score over the batch's voxels (``Batch.layer_validation``)."""
        chosen, setting = {}, self.spec.settings.layer
        for space in self.spec.spaces:
            info = self.model_features[space][1]
            if space not in self.spec.language_models:
                chosen[space.label] = [info.layers[0]] * self.batch.n_folds
            elif setting != "best":
                if int(setting) not in info.layers:
                    raise UsageError(f"--joint-layer {setting}: {space.model_id} has layers "
                                     f"{info.layers[0]}-{info.layers[-1]} (those extracted; see --layers)")
                chosen[space.label] = [int(setting)] * self.batch.n_folds
            else:
                scores = self.batch.layer_validation[space.label]
                layers = sorted(scores)
                per_fold = np.array([scores[layer] for layer in layers])  # (n_layers, n_folds)
                chosen[space.label] = [int(layers[index]) for index in np.nanargmax(per_fold, axis=0)]
        return chosen

    def designs(self, spaces, layers):
        """Each run's design: the spaces' designs at ``layers`` (``{label: layer}``) side by side; the bands."""
        per_space = [self.batch.designs(self.model_features[space][0], layers[space.label])
                     for space in spaces]
        widths = [blocks[0].shape[1] for blocks in per_space]
        edges = np.cumsum([0] + widths)
        bands = [slice(int(start), int(stop)) for start, stop in zip(edges[:-1], edges[1:])]
        return [np.hstack(blocks) for blocks in zip(*per_space)], bands

    def fit(self, spaces, chosen):
        """The solver's result for ``spaces``, each outer fold with its layers (folds that chose the same layers
        are fitted together)."""
        batch = self.batch
        folds = range(batch.n_folds) if batch.test_fold is None else [batch.test_fold]
        by_layers = {}
        for index, fold in enumerate(folds):
            key = tuple(chosen[space.label][index] for space in spaces)
            by_layers.setdefault(key, []).append(fold)
        merged = None
        for key, fold_group in by_layers.items():
            designs, bands = self.designs(spaces, dict(zip((space.label for space in spaces), key)))
            computed = None if batch.test_fold is None and len(by_layers) == 1 else fold_group
            result = self.solver.fit_score(designs, bands, batch.responses, batch.sequence.keys, folds=computed)
            if batch.test_fold is not None:
                result = result.fold(batch.test_fold)
            merged = result if merged is None else _merge(merged, result)
        return merged

    def run(self):
        """The joint fit and, unless ``--no-unique-variance``, the fits without each space: a
        :class:`JointResult`."""
        chosen = self.layers()
        spaces = self.spec.spaces
        fit = self.fit(spaces, chosen)
        unique = None
        if self.spec.settings.unique:
            unique = np.stack([fit.test_r2 - self.fit([s for s in spaces if s != left_out], chosen).test_r2
                               for left_out in spaces])
        return JointResult(fit, unique, {label: chosen[label] for label in
                                         (space.label for space in self.spec.language_models)})


def _merge(merged, result):
    """``merged`` with the outer folds that ``result`` computed and it did not (NaN where a fold was not
    computed, as :meth:`NestedRidgeCV.fit_score` leaves them with ``folds``)."""
    for name, value in vars(result).items():
        array = getattr(merged, name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.shape == array.shape:
            setattr(merged, name, np.where(np.isnan(array), value, array))
    return merged


def joint_maps(result, spec):
    """``[(values (n_voxels of the batch), entities, description)]`` of a joint model's maps."""
    maps = [(result.fit.test_r.mean(axis=0), {"stat": "r"}, "Pearson r of the joint model on held-out stimuli, "
             "mean over outer folds"),
            (result.fit.test_r2.mean(axis=0), {"stat": "r2"}, "R² of the joint model on held-out stimuli, mean "
             "over outer folds")]
    stat, description, weights = result.space_weights()
    for index, space in enumerate(spec.spaces):
        desc = {"desc": space.label}
        maps += [(result.fit.split_r[index].mean(axis=0), {**desc, "stat": "splitr"}, "The space's split r: the "
                  "correlation of its part of the joint prediction with the data, scaled so that the spaces' split "
                  "r add up to the joint r (himalaya's correlation_score_split); mean over outer folds"),
                 (result.fit.split_r2[index].mean(axis=0), {**desc, "stat": "splitr2"}, "The space's split R²: its "
                  "part of the joint R² (himalaya's r2_score_split); mean over outer folds"),
                 (_fold_mean(weights[:, index], stat), {**desc, "stat": stat}, description)]
        if result.unique_r2 is not None:
            maps.append((result.unique_r2[index].mean(axis=0), {**desc, "stat": "uniquer2"}, "The space's unique "
                         "variance: the joint R² minus the R² of the joint model without it; mean over outer folds"))
    if result.unique_r2 is not None:
        maps.append((result.shared_r2.mean(axis=0), {"stat": "sharedr2"}, "The joint R² that no space explains "
                     "alone: the joint R² minus the spaces' unique variances; mean over outer folds"))
    return maps


def _fold_mean(values, stat):
    return np.exp(np.log(values).mean(axis=0)) if stat == "penalty" else values.mean(axis=0)


def joint_rows(result, spec, columns, voxels, hemispheres):
    """The scores table's rows of a joint model for one participant: the joint model (``layer`` = ``joint``),
    then one per space (``layer`` = its label: its split scores and unique variance)."""
    from bids_encoding.ridge.layers import LayerFit

    fit = result.fit
    validation = fit.validation_score[:, voxels]
    rows = [score_row(columns, "joint", LayerFit(fit.test_r[:, voxels], fit.test_r2[:, voxels], None, validation),
                      hemispheres)]
    for index, space in enumerate(spec.spaces):
        split = LayerFit(fit.split_r[index][:, voxels], fit.split_r2[index][:, voxels], None, validation)
        row = score_row(columns, space.label, split, hemispheres)
        if result.unique_r2 is not None:
            row["unique_r2"] = float(np.nanmean(result.unique_r2[index][:, voxels]))
        rows.append(row)
    return rows
