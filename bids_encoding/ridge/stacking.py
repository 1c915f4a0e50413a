"""Stacked regression of several feature spaces (Lin, Naselaris, Kay & Wehbe, NeuroImage 2024).

In each outer fold (one stimulus group held out, as :class:`~bids_encoding.ridge.solver.NestedRidgeCV` does):

1. each space is fitted alone on the training runs, its per-voxel alpha chosen by the ridge's inner CV, and
   predicts the held-out stimulus;
2. each space's held-out predictions on the training runs come from a nested CV inside them: the ridge's own
   :meth:`~NestedRidgeCV.fit_score` on the training runs alone (each training stimulus held out in turn, its
   alpha chosen by the inner CV on the others), as ``stacking_fmri.feat_ridge_CV`` does;
3. per voxel, the convex weights ``w`` (``w ≥ 0``, ``Σ w = 1``) minimising the squared error of
   ``Σ_s w_s ŷ_s`` on those held-out predictions: ``min wᵀ P w`` with ``P_st = mean(e_s e_t)``, ``e_s`` the
   residuals of space ``s`` (:func:`simplex_weights`);
4. the stacked test prediction is ``Σ_s w_s ŷ_s`` of the spaces' test predictions.

What differs from ``stacking-fmri`` (0.1.1) by default, and how to reproduce it (``tests/test_stacking.py``):
its stacking folds are 5 contiguous blocks of the training rows, ours the training stimuli (the same when the
5 blocks are 5 runs); it chooses alphas among ``10^-6 .. 10^9`` by 5-fold ``KFold`` on the validation R²
(``NestedRidgeCV(alphas=..., inner_cv=InnerCV("chunks", n_chunks=5), alpha_score="r2")``), ours by the ridge's
settings; it z-scores every block it fits or predicts (a no-op on whole runs z-scored one by one); it solves the
weights with cvxopt's interior-point QP, one voxel at a time, to its tolerance (~1e-7), ours exactly.
"""

from itertools import combinations

import numpy as np
import torch

from bids_encoding.ridge.bands import check_bands
from bids_encoding.ridge.cv import split_one_stimulus, training_layout
from bids_encoding.ridge.kernels import SCORES_OF_PREDICTIONS
from bids_encoding.ridge.result import StackedResult
from bids_encoding.ridge.scoring import correlation_split, pearson_r, r2_score, r2_split
from bids_encoding.ridge.solver import NestedRidgeCV
from bids_encoding.stimuli import stimulus_groups

REFERENCE = ("Lin, R., Naselaris, T., Kay, K., & Wehbe, L. (2024). Stacked regressions and structured variance "
             "partitioning for interpretable brain maps. NeuroImage, 298, 120772. "
             "https://doi.org/10.1016/j.neuroimage.2024.120772")
MAX_SPACES = 8  # the exact solver visits the 2^n_spaces - 1 faces of the simplex


def simplex_weights(gram, tolerance=1e-9):
    """Exact minimiser of ``wᵀ P w`` over the simplex (``w ≥ 0``, ``Σ w = 1``), for many small ``P`` at once.

    Every non-empty subset ``S`` of the spaces (a face of the simplex) is tried: the minimiser of ``wᵀ P w`` on
    the face's affine hull (``Σ_S w = 1``, ``w = 0`` outside ``S``) solves the KKT system
    ``[[P_SS, 1], [1ᵀ, 0]] [w_S; ν] = [0; 1]`` (batched pseudo-inverse: a singular system gets its least-norm
    solution). Candidates with a weight below ``-tolerance`` are dropped, the others clipped at 0 and rescaled
    to sum to 1, so every candidate kept is feasible, and the one with the smallest objective is returned.

    Why it is exact: take a minimiser with the fewest non-zero weights, and ``S`` its support. In the relative
    interior of its face it is a local, hence (``P`` is positive semi-definite: convex) global, minimiser on
    the face's affine hull, and the only one: another would give a direction along which the objective is
    constant, and moving along it until a weight reaches 0 would give a minimiser of smaller support. A unique
    minimiser makes the KKT system non-singular, so the candidate of ``S`` is that minimiser; all candidates
    are feasible, so none is smaller. (cvxopt's interior point, which ``stacking-fmri`` runs voxel by voxel,
    stops at its tolerance instead.)

    Parameters
    ----------
    gram : array ``(..., n_spaces, n_spaces)``
        Positive semi-definite matrices (the residuals' cross-products).
    tolerance : float
        How negative a weight may be, from rounding, and still count as 0.

    Returns
    -------
    numpy.ndarray ``(..., n_spaces)``, float64
    """
    gram = np.asarray(gram, dtype=np.float64)
    *batch, n_spaces, _ = gram.shape
    flat = gram.reshape(-1, n_spaces, n_spaces)
    best = np.full(len(flat), np.inf)
    weights = np.zeros((len(flat), n_spaces))
    for size in range(1, n_spaces + 1):
        for subset in combinations(range(n_spaces), size):
            index = list(subset)
            kkt = np.ones((len(flat), size + 1, size + 1))
            kkt[:, :size, :size] = flat[:, index][:, :, index]
            kkt[:, size, size] = 0
            face = np.linalg.pinv(kkt)[:, :size, size]  # the last column: the solution for the right side e_last
            feasible = np.isfinite(face).all(axis=1) & (face >= -tolerance).all(axis=1)
            face = np.clip(np.nan_to_num(face), 0, None)
            total = face.sum(axis=1, keepdims=True)
            feasible &= total[:, 0] > 0
            face = face / np.where(total > 0, total, 1)
            candidate = np.zeros_like(weights)
            candidate[:, index] = face
            objective = np.einsum("vs,vst,vt->v", candidate, flat, candidate)
            better = feasible & (objective < best)
            best[better], weights[better] = objective[better], candidate[better]
    return weights.reshape(*batch, n_spaces)


class StackedRidgeCV:
    """Stacked regression of feature spaces, each a voxel-wise ridge with nested cross-validation.

    Parameters
    ----------
    ridge : NestedRidgeCV or None
        The per-space fits: alphas, inner CV, alpha score, compute. ``None``: ``NestedRidgeCV(**settings)``.
    **settings
        ``NestedRidgeCV``'s parameters, when ``ridge`` is ``None``.

    Notes
    -----
    Cost: per outer fold and space, the ridge's fit on the training runs (as ``NestedRidgeCV``) plus its full
    nested CV over the training runs alone, i.e. about ``n_stimuli`` times the fits of a plain
    ``NestedRidgeCV`` for each space; the weights, one small QP per voxel, are negligible. Memory: every space's
    held-out predictions on the training runs, ``n_spaces × n_training_scans × n_voxels`` floats.
    """

    def __init__(self, ridge=None, **settings):
        if ridge is not None and settings:
            raise ValueError("give a NestedRidgeCV or its settings, not both")
        self.ridge = NestedRidgeCV(**settings) if ridge is None else ridge

    def record(self):
        """JSON-able description for the sidecars."""
        return {"Method": "stacked regression", "Reference": REFERENCE,
                "Spaces": "each feature space fitted alone by the nested ridge (its own per-voxel alpha)",
                "HeldOutPredictions": "each space's predictions of every training stimulus by a ridge fitted on "
                                      "the other training stimuli, its alpha chosen by the inner CV among them",
                "Weights": "per voxel and outer fold, the convex weights (non-negative, summing to 1) minimising "
                           "the squared error of the weighted held-out predictions (exact QP over the simplex's "
                           "faces)",
                "Prediction": "the weighted sum of the spaces' test predictions",
                "Alpha": "the alpha of the space with the largest weight"}

    def fit_score(self, designs, bands, responses, stimulus_keys=None, keep_predictions=False, progress=None,
                  folds=None):
        """Nested cross-validation of the stacked model.

        Parameters
        ----------
        designs : list of array ``(n_scans_run, n_features)``
            One per run, z-scored: the spaces' columns side by side.
        bands : list of slice
            Each space's columns.
        responses : list of array ``(n_scans_run, n_voxels)``
            One per run, z-scored.
        stimulus_keys, keep_predictions, progress, folds
            As :meth:`NestedRidgeCV.fit_score`; ``keep_predictions`` keeps the stacked test predictions.

        Returns
        -------
        StackedResult
        """
        if len(designs) != len(responses) or not designs:
            raise ValueError("one response per design, and at least one run")
        bands = check_bands(bands, designs[0].shape[1], MAX_SPACES)
        keys = list(range(len(designs))) if stimulus_keys is None else list(stimulus_keys)
        groups = stimulus_groups(keys)
        if len(groups) == 1:  # the ridge's outer folds of a single stimulus, made once for all spaces
            designs, responses, keys = split_one_stimulus(designs, responses, self.ridge.outer_chunks,
                                                          self.ridge.chunk_gap)
            groups = stimulus_groups(keys)
        spaces = [self.ridge.fit_score([x[:, band] for x in designs], responses, keys, keep_predictions=True,
                                       folds=folds) for band in bands]
        n_voxels = responses[0].shape[1]
        shape = (len(bands), len(groups), n_voxels)
        result = StackedResult(*(np.full(shape[1:], np.nan, np.float32) for _ in range(4)),
                               weights=np.full(shape[1:2] + shape[:1] + shape[2:], np.nan, np.float32),
                               space_r=np.stack([space.test_r for space in spaces]),
                               space_r2=np.stack([space.test_r2 for space in spaces]),
                               space_alpha=np.stack([space.alpha for space in spaces]),
                               split_r=np.full(shape, np.nan, np.float32), split_r2=np.full(shape, np.nan, np.float32),
                               forms=spaces[0].forms, description=self.record())
        computed = range(len(groups)) if folds is None else sorted(folds)
        for index, fold in enumerate(computed):
            weights, result.validation_score[fold] = self._weights(designs, bands, responses, keys,
                                                                   (groups, groups[fold]))
            result.weights[fold] = weights.T
            result.alpha[fold] = result.space_alpha[weights.argmax(axis=1), fold, np.arange(n_voxels)]
            stacked = _weighted([space.predictions[index] for space in spaces], weights)
            target = torch.as_tensor(spaces[0].targets[index], dtype=torch.float64)
            result.test_r[fold] = pearson_r(stacked, target).numpy()
            result.test_r2[fold] = r2_score(stacked, target).numpy()
            parts = torch.stack([torch.as_tensor(space.predictions[index], dtype=torch.float64)
                                 * torch.as_tensor(weights[:, s]) for s, space in enumerate(spaces)])
            result.split_r[:, fold] = correlation_split(target, parts).numpy()
            result.split_r2[:, fold] = r2_split(target, parts).numpy()
            if keep_predictions:
                result.predictions.append(stacked.numpy().astype(np.float32))
                result.targets.append(spaces[0].targets[index])
            if progress is not None:
                progress()
        return result

    def _weights(self, designs, bands, responses, keys, fold):
        """Each voxel's weights ``(n_voxels, n_spaces)`` from the spaces' held-out predictions on the training
        runs of one outer fold (``fold``: the groups and the held-out one among them), and the stacked held-out
        predictions' validation score."""
        train_runs, _ = training_layout(designs, *fold)
        held = [self.ridge.fit_score([designs[run][:, band] for run in train_runs], [responses[run] for run in
                                     train_runs], [keys[run] for run in train_runs], keep_predictions=True)
                for band in bands]
        n_voxels = responses[0].shape[1]
        gram, n_rows = np.zeros((n_voxels, len(bands), len(bands))), 0
        for index, target in enumerate(held[0].targets):
            errors = np.stack([target - space.predictions[index] for space in held]).astype(np.float64)
            gram += np.einsum("snv,tnv->vst", errors, errors)
            n_rows += len(target)
        weights = simplex_weights(gram / n_rows)
        scores = [self._score(_weighted([space.predictions[index] for space in held], weights), target)
                  for index, target in enumerate(held[0].targets)]
        return weights, np.mean(scores, axis=0)

    def _score(self, prediction, target):
        """The ridge's validation score (r, R² or Huth's R²) of one held-out stimulus's predictions."""
        target = torch.as_tensor(target, dtype=torch.float64)
        if self.ridge.alpha_score == "r":
            return pearson_r(prediction, target).numpy()
        total = ((target - target.mean(dim=0, keepdim=True)) ** 2).sum(dim=0)
        return SCORES_OF_PREDICTIONS[self.ridge.alpha_score](prediction, target, total).numpy()


def _weighted(predictions, weights):
    """``Σ_s w_s ŷ_s`` (float64 tensor) of the spaces' predictions ``(n_scans, n_voxels)`` and weights
    ``(n_voxels, n_spaces)``."""
    return sum(torch.as_tensor(prediction, dtype=torch.float64) * torch.as_tensor(weights[:, s])
               for s, prediction in enumerate(predictions))
