"""The maps and score rows written for each layer (and the best layer) of a participant's fit: a declarative list
(:data:`LAYER_MAPS`), so that a new map is one entry."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bids_encoding.derivatives import summary_scores
from bids_encoding.ridge.ceiling import normalized_correlation
from bids_encoding.ridge.significance import fdr_qvalues


@dataclass(frozen=True)
class MapContext:
    """What a map is computed from: the fit of the participants fitted together (a
    :class:`~bids_encoding.ridge.layers.LayerFit`), the participant's voxels among theirs, their noise ceiling
    and the outer folds that test a repeated stimulus."""

    fit: object
    voxels: slice
    ceiling: np.ndarray | None
    repeated_folds: list


@dataclass(frozen=True)
class OutputMap:
    """One ``stat-<stat>`` map: its description and its values (``None``: not written for this fit)."""

    stat: str
    description: str
    values: Callable[[MapContext], np.ndarray | None]


def _geometric_mean_alpha(context):
    alpha = context.fit.alpha
    return None if alpha is None else np.exp(np.log(alpha).mean(axis=0))[context.voxels]


def _normalized_r(context):
    if context.ceiling is None or not context.repeated_folds:
        return None
    return normalized_correlation(context.fit.r[context.repeated_folds].mean(axis=0)[context.voxels], context.ceiling)


LAYER_MAPS = (
    OutputMap("r", "Pearson r on held-out stimuli, mean over outer folds",
              lambda context: context.fit.r.mean(axis=0)[context.voxels]),
    OutputMap("r2", "R² (coefficient of determination) on held-out stimuli, mean over outer folds",
              lambda context: context.fit.r2.mean(axis=0)[context.voxels]),
    OutputMap("alpha", "Ridge alpha chosen by inner cross-validation (geometric mean over outer folds)",
              _geometric_mean_alpha),
    OutputMap("p", "One-sided p-value of the mean r (see Significance)",
              lambda context: None if context.fit.p is None else context.fit.p[context.voxels]),
    OutputMap("q", "Benjamini-Hochberg FDR q-value over the participant's mask",
              lambda context: None if context.fit.p is None else fdr_qvalues(context.fit.p[context.voxels])),
    OutputMap("rnorm", "r on the repeated stimuli (with their mean response) divided by CC_max (Schoppe et al. "
              "2016); n/a where CC_max < 0.05", _normalized_r),
)


def write_layer_maps(participant, context, sidecar, model, layer):
    """Write one layer's maps (:data:`LAYER_MAPS`) for one participant."""
    for output_map in LAYER_MAPS:
        values = output_map.values(context)
        if values is not None:
            participant.output.write_map(values, {**sidecar, "Description": output_map.description}, model=model,
                                         layer=layer, stat=output_map.stat)


def score_row(model_columns, layer, fit, hemispheres):
    """A row of the participant's scores table: the model's columns, the layer, the summary scores of the
    participant's voxels (``fit``: their :class:`~bids_encoding.ridge.layers.LayerFit`)."""
    identity = {key: model_columns[key] for key in ("model", "model_id")}
    return {**identity, "layer": layer, **{key: value for key, value in model_columns.items() if key not in identity},
            **summary_scores(fit.r, fit.r2, fit.validation, hemispheres)}


def model_columns(spec, model_info):
    """The scores table's columns that describe the model."""
    return {"model": spec.label, "model_id": spec.model_id, "n_params": model_info.n_params,
            "n_params_no_head": model_info.n_params_no_head,
            "n_params_non_embedding": model_info.n_params_non_embedding,
            "n_layers": model_info.n_layers, "hidden_size": model_info.hidden_size}
