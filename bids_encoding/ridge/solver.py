"""Nested cross-validation of a voxel-wise ridge, with one alpha per voxel (or per participant), in torch.

The outer folds leave one stimulus out; inside each, alphas are chosen by an inner scheme (:mod:`.cv`). The
primal form (:mod:`.kernels`) decomposes ``XᵀX`` once per split: ``XᵀX`` and ``XᵀY`` of each inner split are
the outer fold's minus the validation rows', so no split touches its training rows again. The dual form
(:mod:`.dual`) decomposes the kernel of all scans once. Everything that depends on X alone is computed once per
split and shared by all voxels — and by all participants who heard the same stimulus, whose voxels are simply
concatenated. Voxels go through in blocks sized to the memory budget (:mod:`.memory`).
"""

import math
from contextlib import contextmanager

import numpy as np
import torch

from bids_encoding.ridge.cv import (
    ALPHA_SCORES,
    DEFAULT_ALPHAS,
    INNER_SCHEMES,
    InnerCV,
    split_one_stimulus,
    training_layout,
)
from bids_encoding.ridge.dual import Deletion, Split, rows_of
from bids_encoding.ridge.kernels import SOLVERS, ridge_weights
from bids_encoding.ridge.memory import BLOCK_MULTIPLE, Compute
from bids_encoding.ridge.result import CVResult, TestedBlock
from bids_encoding.ridge.scoring import pearson_r, r2_score
from bids_encoding.stimuli import stimulus_groups

# Bump when the fit, the alphas chosen or the scores change for the same settings (docs/usage.md "Versions").
# 1: as of bids_encoding 0.2.0 (the dual form's float64 residual).
RIDGE_CODE_VERSION = 1


@contextmanager
def _tf32(enabled):
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous







def shape_form(n_train, n_features):
    """``primal`` (eigendecompositions of ``XᵀX`` per split) when the features are fewer than half the
    training scans, else ``dual`` (:class:`.dual.Deletion`). Measured on 2 CPU cores, 9 runs of 310 scans: p = 768,
    primal 57.0 s and dual 62.0 s for 20k voxels; p = 2,048, primal 95.8 s and dual 24.1 s for 5k voxels
    (benchmarks/bench_ridge.py --compare-forms); at 9 runs of 280 scans and 26k voxels, p = 768: primal 54 s,
    dual 69 s (benchmarks/bench_study.py; docs/performance.md)."""
    return "dual" if 2 * n_features > n_train else "primal"







class NestedRidgeCV:
    """Voxel-wise ridge with nested cross-validation over runs.

    Parameters
    ----------
    alphas : sequence of float
    inner_cv : InnerCV
        How alphas are chosen inside each outer fold.
    alpha_per_voxel : bool
        One alpha per voxel (default), or one shared by all voxels of a
        participant (Bonnasse-Gahot & Pallier), chosen on their mean
        validation score.
    alpha_score : str
        What alphas (and layers) are chosen on: ``r``, the validation Pearson
        r (the seed papers), or ``r2``, the validation R² (himalaya, the
        Gallant lab).
    solver : str
        A name in ``SOLVERS`` (see :class:`~bids_encoding.ridge.kernels.EigenRidge` for the interface).
    rank : int or None
        The dual form on a randomized rank-``rank`` approximation of the features (approximate; ``None``:
        exact).
    chunks : (int, int)
        With a single stimulus, the outer folds are ``chunks[0]`` contiguous chunks of it, ``chunks[1]`` scans
        dropped after each border between chunks.
    compute : Compute
        Device, dtype, memory budget and form (:class:`~bids_encoding.ridge.memory.Compute`): how the fit is
        computed, not what.

    What the sidecars say of it: :func:`bids_encoding.derivatives.sidecars.ridge_record` and
    :func:`~bids_encoding.derivatives.sidecars.cv_scheme_record`.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, inner_cv=InnerCV(), alpha_per_voxel=True, alpha_score="r",
                 solver="ridge", rank=None, chunks=(5, 5), compute=Compute()):
        if rank is not None and (compute.form == "primal" or solver != "ridge"):
            raise ValueError("a reduced rank exists for the dual form of the 'ridge' solver only")
        if alpha_score not in ALPHA_SCORES:
            raise ValueError(f"alpha_score must be one of {ALPHA_SCORES}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {sorted(SOLVERS)}")
        if compute.form == "dual" and solver != "ridge":
            raise ValueError("the dual form exists for the 'ridge' solver only")
        self.rank = rank
        self.solver = solver
        self.outer_chunks, self.chunk_gap = chunks
        self.alphas = tuple(sorted(float(a) for a in alphas))
        self.alpha_score = alpha_score
        self.inner_cv = inner_cv
        self.alpha_per_voxel = alpha_per_voxel
        self.compute = compute

    def inner_cv_for(self, n_stimuli):
        """The inner scheme run with this many distinct stimuli: with two, contiguous chunks of the one training
        stimulus take the place of a scheme that needs several (``InnerScheme.with_two_stimuli``)."""
        if n_stimuli == 2 and not INNER_SCHEMES[self.inner_cv.scheme].with_two_stimuli:
            return InnerCV("chunks", n_chunks=self.inner_cv.n_chunks)
        return self.inner_cv

    def weights(self, designs, responses, alpha):
        """Ridge weights ``(n_features, n_voxels)`` refit on every run at each voxel's ``alpha`` (float64; for
        designs of few features, such as the neuron patterns')."""
        return ridge_weights(list(designs), list(responses), alpha)

    def _tensor(self, array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.compute.dtype, device=self.compute.device)

    def _columns(self, array, voxels):
        """Columns of a response array as a tensor, zero-padded to a multiple of ``BLOCK_MULTIPLE``.

        Matrix-product kernels are chosen by shape: with every block a
        multiple of 64 wide, each voxel's numbers do not depend on how the
        voxels were chunked.
        """
        block = array[:, voxels]
        padding = -block.shape[1] % BLOCK_MULTIPLE
        if padding:
            block = np.pad(block, ((0, 0), (0, padding)))
        return self._tensor(block)

    def fit_score(self, designs, responses, stimulus_keys=None, keep_predictions=False, progress=None,
                  voxel_groups=None, folds=None):
        """Nested cross-validation.

        Parameters
        ----------
        designs : list of array ``(n_scans_run, n_features)``
            One per run, z-scored.
        responses : list of array ``(n_scans_run, n_voxels)``
            One per run, z-scored (numpy, stays in host memory; blocks move to the device).
        stimulus_keys : list or None
            One per run; runs with equal keys repeat one stimulus and are held
            out together. ``None``: every run is its own stimulus.
        keep_predictions : bool
            Keep held-out predictions and targets (for permutation tests).
        progress : callable or None
            Called once per outer fold.
        voxel_groups : list of int or None
            Numbers of consecutive voxels that belong to one participant (the
            participants fitted together); a shared alpha is chosen for each
            group. ``None``: all voxels are one participant's.

        Returns
        -------
        CVResult
        """
        keys = list(range(len(designs))) if stimulus_keys is None else list(stimulus_keys)
        if len(designs) != len(responses) or not designs:
            raise ValueError("one response per design, and at least one run")
        groups = stimulus_groups(keys)
        inner_cv = self.inner_cv_for(len(groups))
        if len(groups) == 1:
            designs, responses, keys = split_one_stimulus(designs, responses, self.outer_chunks, self.chunk_gap)
            groups = stimulus_groups(keys)
        n_voxels = responses[0].shape[1]
        voxel_groups = [n_voxels] if voxel_groups is None else [int(n) for n in voxel_groups]
        if sum(voxel_groups) != n_voxels:
            raise ValueError(f"voxel_groups add up to {sum(voxel_groups)}, the responses have {n_voxels} voxels")
        n_train = sum(len(x) for x in designs) - max(sum(len(designs[run]) for run in group) for group in groups)
        fit = self._fit_score_dual if self._form(n_train, designs[0].shape[1]) == "dual" else self._fit_score
        with _tf32(self.compute.tf32), torch.no_grad():
            return fit(designs, responses, groups, keep_predictions, progress, voxel_groups, inner_cv, folds)

    def _form(self, n_rows, n_features):
        """The form given to the estimator, or the one :func:`shape_form` picks; another solver than the
        eigendecomposition ridge has only the primal form."""
        if self.compute.form != "auto":
            return self.compute.form
        if self.rank is not None:
            return "dual"
        return shape_form(n_rows, n_features) if self.solver == "ridge" else "primal"

    def _shared_choice(self, scores, voxel_groups):
        """Index of the alpha with the best mean score over each group's voxels, for every voxel."""
        choices, start = [], 0
        for size in voxel_groups:
            best = scores[:, start:start + size].double().mean(dim=1).argmax()
            choices.append(best.expand(size))
            start += size
        return torch.cat(choices)

    def _fit_score(self, designs, responses, groups, keep_predictions, progress, voxel_groups, inner_cv, folds=None):
        solver = SOLVERS[self.solver](self.alphas, self.alpha_score, self.compute.dtype, self.compute.device)
        x_runs = [self._tensor(x) for x in designs]
        n_voxels = responses[0].shape[1]
        shape = (len(groups), n_voxels)
        result = CVResult(*(np.zeros(shape, np.float32) for _ in range(4)))
        for group in groups:
            if len({len(designs[run]) for run in group}) > 1:
                raise ValueError("repeated runs of one stimulus must have the same number of scans")
        if folds is not None:
            for array in (result.test_r, result.test_r2, result.validation_score, result.alpha):
                array[:] = np.nan
        for fold, test_group in enumerate(groups):
            if folds is not None and fold not in folds:
                continue
            train_runs, group_rows = training_layout(designs, groups, test_group)
            x_train = torch.cat([x_runs[run] for run in train_runs])
            result.forms.append("primal")
            gram = x_train.double().T @ x_train.double()
            inner = []
            for rows in inner_cv.validation_sets(group_rows, len(x_train)):
                rows = torch.as_tensor(rows, device=self.compute.device)
                x_val = x_train[rows]
                inner.append((rows, x_val, solver.scorer(gram - x_val.double().T @ x_val.double(), x_val)))
            outer = solver.predictor(gram, x_runs[test_group[0]])
            block = self.compute.block_size((len(x_train), x_train.shape[1], max(len(rows) for rows, _, _ in inner),
                                             len(designs[test_group[0]]), n_voxels), len(self.alphas))

            def training_block(voxels, train_runs=train_runs, x_train=x_train):
                y_train = torch.cat([self._columns(responses[run], voxels) for run in train_runs])
                return y_train, x_train.T @ y_train

            padded = n_voxels + BLOCK_MULTIPLE * math.ceil(n_voxels / block)
            scores = torch.zeros((len(solver.candidates), padded), dtype=self.compute.dtype, device=self.compute.device)
            tested = []
            blocks = [slice(start, min(start + block, n_voxels)) for start in range(0, n_voxels, block)]
            for voxels in blocks:
                y_train, cross = training_block(voxels)
                columns = slice(voxels.start, voxels.start + y_train.shape[1])
                for rows, x_val, scorer in inner:
                    y_val = y_train[rows]
                    scores[:, columns] += scorer.scores(cross - x_val.T @ y_val, y_val)
                scores[:, columns] /= len(inner)
                if self.alpha_per_voxel:
                    tested.append(self._test_block(voxels, outer, cross, scores[:, columns].argmax(dim=0), solver,
                                                   responses, test_group, keep_predictions))
            scores = scores[:, :n_voxels]
            if self.alpha_per_voxel:
                choice = scores.argmax(dim=0)
            else:
                choice = self._shared_choice(scores, voxel_groups)
                for voxels in blocks:
                    cross = training_block(voxels)[1]
                    padded_choice = torch.zeros(cross.shape[1], dtype=torch.long, device=self.compute.device)
                    padded_choice[:voxels.stop - voxels.start] = choice[voxels]
                    tested.append(self._test_block(voxels, outer, cross, padded_choice, solver, responses,
                                                   test_group, keep_predictions))
            result.validation_score[fold] = scores.gather(0, choice[None]).squeeze(0).cpu().numpy()
            for name in ("test_r", "test_r2", "alpha"):
                getattr(result, name)[fold] = np.concatenate([getattr(block, name) for block in tested])
            if keep_predictions:
                result.predictions.append(np.concatenate([block.prediction for block in tested], axis=1))
                result.targets.append(np.concatenate([block.target for block in tested], axis=1))
            if progress is not None:
                progress()
        return result

    def _fit_score_dual(self, designs, responses, groups, keep_predictions, progress, voxel_groups, inner_cv,
                        folds=None):
        """The dual form (:class:`.dual.Deletion`): one eigendecomposition of the kernel of all scans; every split's
        held-out predictions by deleting its held-out scans from that fit. Validation scores in a first pass over
        the voxel blocks, test predictions at the chosen alphas in a second."""
        alphas = torch.tensor(self.alphas, dtype=self.compute.dtype, device=self.compute.device)
        starts = np.cumsum([0] + [len(x) for x in designs])
        run_rows = [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:])]
        n_rows, n_features = int(starts[-1]), designs[0].shape[1]
        if self.rank is None:
            self.compute.check_kernel(n_rows, n_features)
        fit = Deletion(torch.cat([self._tensor(x) for x in designs]), alphas, self.compute.dtype, rank=self.rank)
        fit.full_hat = self.compute.room_for_hat(fit.n_rows)
        n_voxels = responses[0].shape[1]
        result = CVResult(*(np.full((len(groups), n_voxels), np.nan, np.float32) for _ in range(4)))
        plans = []
        for fold, test_group in enumerate(groups):
            if folds is not None and fold not in folds:
                continue
            train_runs, group_rows = training_layout(designs, groups, test_group)
            if len({len(designs[run]) for run in test_group}) > 1:
                raise ValueError("repeated runs of one stimulus must have the same number of scans")
            train_index = np.concatenate([run_rows[run] for run in train_runs])
            held = np.concatenate([run_rows[run] for run in test_group])
            inner = [(train_index[rows], np.concatenate([train_index[rows], held]))
                     for rows in inner_cv.validation_sets(group_rows, len(train_index))]
            plans.append((fold, test_group, (run_rows[test_group[0]], held), inner))
        max_group = max(len(g) for *_, inner in plans for _, g in inner)
        copied_rows = sum(len(rows) for *_, inner in plans for rows, _ in inner
                          if not isinstance(rows_of(rows, "cpu"), slice))
        outer_operators = sum(len(rows) * len(held) for _, _, (rows, held), _ in plans)
        block, room = self.compute.dual_block_size(fit, (max_group, n_voxels, len(plans), copied_rows, outer_operators),
                                                   len(self.alphas))
        blocks = [slice(start, min(start + block, n_voxels)) for start in range(0, n_voxels, block)]

        def allrows_of(voxels):
            return torch.cat([self._columns(response, voxels) for response in responses])

        scores = {fold: torch.zeros((len(alphas), n_voxels), dtype=torch.float64, device=self.compute.device)
                  for fold, *_ in plans}
        outers = {}
        for index, batch in enumerate(self.compute.operator_batches(plans, room, len(self.alphas))):
            outer_deletions = [plan[2] for plan in plans] if index == 0 else []  # computed with the first batch
            flat = iter(fit.operators([deletion for *_, inner in batch for deletion in inner] + outer_deletions))
            operators = {fold: [next(flat) for _ in inner] for fold, _, _, inner in batch}
            outers.update({plan[0]: next(flat) for plan in plans} if index == 0 else {})
            splits = [(fold, op, Split(rows, held, self.compute.device)) for fold, _, (_, held), inner in batch
                      for (rows, _), op in zip(inner, operators[fold])]
            for voxels in blocks:
                y = allrows_of(voxels)
                z, outside = fit.rotate(y)
                width = voxels.stop - voxels.start
                targets = [split.targets(y) for _, _, split in splits]
                for a, direction in enumerate(fit.directions(z, outside, y)):
                    fitted, residual = fit.full_fit(z, outside, a, y, direction)
                    for (fold, op, split), target in zip(splits, targets):
                        prediction = split.predict(fitted, residual, op[a])
                        scores[fold][a, voxels] += split.score(prediction, target, self.alpha_score)[:width]
        choices, tested = {}, {fold: [] for fold, *_ in plans}
        for fold, _, _, inner in plans:
            fold_scores = scores[fold] / len(inner)
            choices[fold] = fold_scores.argmax(dim=0) if self.alpha_per_voxel else \
                self._shared_choice(fold_scores, voxel_groups)
            result.validation_score[fold] = fold_scores.gather(0, choices[fold][None]).squeeze(0).cpu().numpy()
        for voxels in blocks:
            y = allrows_of(voxels)
            z, outside = fit.rotate(y)
            for fold, test_group, (test_rows, held), _ in plans:
                choice = torch.zeros(y.shape[1], dtype=torch.long, device=self.compute.device)
                choice[:voxels.stop - voxels.start] = choices[fold][voxels]
                prediction = fit.fitted(z, choice, rows_of(test_rows, self.compute.device))
                residual = fit.residual(z, outside, choice, rows_of(held, self.compute.device))
                for a in choice.unique():
                    columns = choice == a
                    prediction[:, columns] -= outers[fold][a] @ residual[:, columns]
                target = torch.stack([y[run_rows[run]] for run in test_group]).mean(dim=0)
                tested[fold].append(self._tested(voxels, prediction, target, choice, alphas, keep_predictions))
        for fold, *_ in plans:
            for name in ("test_r", "test_r2", "alpha"):
                getattr(result, name)[fold] = np.concatenate([getattr(block, name) for block in tested[fold]])
            if keep_predictions:
                result.predictions.append(np.concatenate([block.prediction for block in tested[fold]], axis=1))
                result.targets.append(np.concatenate([block.target for block in tested[fold]], axis=1))
            result.forms.append("dual")
            if progress is not None:
                progress()
        return result

    def _test_block(self, voxels, outer, cross, choice, solver, responses, test_group, keep):
        """Refit on all training rows with each voxel's candidate (index ``choice``); score on the held-out
        stimulus."""
        target = torch.stack([self._columns(responses[run], voxels) for run in test_group]).mean(dim=0)
        return self._tested(voxels, outer.predict(cross, choice), target, choice, solver.candidates, keep)

    @staticmethod
    def _tested(voxels, prediction, target, choice, candidates, keep):
        width = voxels.stop - voxels.start
        return TestedBlock(test_r=pearson_r(prediction, target).cpu().numpy()[:width],
                            test_r2=r2_score(prediction, target).cpu().numpy()[:width],
                            alpha=candidates[choice].cpu().numpy()[:width],
                            prediction=prediction.cpu().numpy()[:, :width] if keep else None,
                            target=target.cpu().numpy()[:, :width] if keep else None)
