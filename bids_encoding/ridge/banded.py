"""Banded ridge: one penalty per feature space and per voxel, chosen by nested cross-validation (torch).

The features are the columns of several spaces (``bands``). A candidate is a kernel weight ``γ_i`` per space
(on the simplex) and an ``alpha``: kernel ridge on ``K_γ = Σ_i γ_i X_i X_iᵀ``, the same as ridge with the
penalty ``alpha / γ_i`` on space ``i``'s weights. As himalaya's ``MultipleKernelRidgeCV(solver="random_search")``,
the gammas are Dirichlet draws (the first: equal weights), and each voxel keeps the gamma whose best alpha
scores best on the inner validation splits.

Per gamma, ONE eigendecomposition of ``K_γ`` on all scans (the thin SVD of the scaled features when they are
fewer than the scans), and every inner split's and outer fold's predictions by deleting their held-out scans
from that fit (:class:`~bids_encoding.ridge.dual.Deletion`): himalaya decomposes one kernel per gamma, outer
fold and inner split. A voxel whose best score improves is refit at once: the dual weights of the outer fold's
training scans come from the same deletion, and give each space's share of the held-out prediction.
"""

import numpy as np
import torch

from bids_encoding.ridge.bands import SpaceShares, check_bands
from bids_encoding.ridge.cv import ALPHA_SCORE_NAMES, DEFAULT_ALPHAS, InnerCV, split_one_stimulus, training_layout
from bids_encoding.ridge.dual import Deletion, rows_of
from bids_encoding.ridge.kernels import SCORES_OF_PREDICTIONS
from bids_encoding.ridge.memory import Compute
from bids_encoding.ridge.result import BandedResult
from bids_encoding.ridge.scoring import correlation_split, pearson_r, r2_score, r2_split
from bids_encoding.ridge.solver import NestedRidgeCV, _tf32
from bids_encoding.stimuli import stimulus_groups


def dirichlet_gammas(n_iter, n_spaces, concentration=(0.1, 1.0), seed=0):
    """Candidate kernel weights ``(n_iter, n_spaces)``, drawn as himalaya's ``generate_dirichlet_samples``
    (``numpy.random.RandomState(seed)``, cycling through the concentrations), the first replaced by equal
    weights (as its random search does)."""
    rng = np.random.RandomState(seed)
    concentration = np.atleast_1d(concentration)
    per = int(np.ceil(n_iter / len(concentration)))
    draws = [np.full((per, n_spaces), 1 / n_spaces) if c == np.inf else rng.dirichlet([c] * n_spaces, per)
             for c in concentration]
    gammas = np.swapaxes(np.stack(draws), 0, 1).reshape(-1, n_spaces)[:n_iter]
    gammas[0] = 1 / n_spaces
    return gammas


class _KernelFit(Deletion):
    """:class:`Deletion` of the kernel ``K_γ``: from the thin SVD of the scaled features (fewer features than
    scans) or the eigendecomposition of the kernel; float64 as there (the rest is Deletion's)."""

    def __init__(self, alphas, dtype, features=None, kernel=None, tolerance=1e-10):
        if features is not None:
            left, singular, _ = torch.linalg.svd(features, full_matrices=False)
            eigenvalues, eigenvectors, null = singular ** 2, left, None
        else:
            eigenvalues, eigenvectors = torch.linalg.eigh(kernel)
        kept = eigenvalues > eigenvalues.max().clamp_min(1e-300) * tolerance
        if features is None:
            null = eigenvectors[:, ~kept].to(dtype) if 2 * (~kept).sum() < kept.sum() else None
        self.eigenvalues, self.eigenvectors64, self.null = eigenvalues[kept], eigenvectors[:, kept], null
        self.alphas64 = alphas.double()
        self.shrinkage = self.eigenvalues[None, :] / (self.eigenvalues[None, :] + self.alphas64[:, None])
        self.eigenvectors = self.eigenvectors64.to(dtype)
        self.n_rows, self.rank = self.eigenvectors.shape
        self.dtype = dtype
        self.full_hat = True

    def operators(self, deletions):
        """:meth:`Deletion.operators`, the same float64 algebra batched over the deletions that share their rest
        ``R`` and size (a fold's inner splits): per alpha and group, ONE batched factorisation of the Schur
        complements and one solve ``S⁻¹ [I, -A_VR A_RR⁻¹]`` instead of one chain of small calls per split
        (measured: docs/performance.md, "Banded ridge")."""
        ops = [torch.empty((len(self.alphas64), len(rows), len(g)), dtype=self.dtype,
                           device=self.eigenvectors.device) for rows, g in deletions]
        groups = {}
        for index, (rows, g) in enumerate(deletions):
            groups.setdefault((tuple(np.asarray(g)[len(rows):].tolist()), len(rows)), []).append(index)
        device = self.eigenvectors64.device
        for a, shrinkage in enumerate(self.shrinkage):
            block = self._complement_blocks(shrinkage)
            for (rest, n_rows), indices in groups.items():
                rows = [rows_of(deletions[index][0], device) for index in indices]
                a_vv = torch.stack([block(r, r) for r in rows])
                identity = torch.eye(n_rows, dtype=a_vv.dtype, device=device).expand_as(a_vv)
                if rest:
                    rest = rows_of(rest, device)
                    rest_factor = torch.linalg.cholesky(block(rest, rest))
                    a_rv = torch.stack([block(rest, r) for r in rows])
                    weights = torch.cholesky_solve(a_rv, rest_factor).mT  # A_VR A_RR⁻¹
                    factor = torch.linalg.cholesky(a_vv - weights @ a_rv)
                    # one solve S⁻¹ [I, -W]: torch's (batched) cholesky_inverse then a product was 2.6x slower here
                    op = torch.cholesky_solve(torch.cat([identity, -weights], dim=2), factor)
                else:
                    op = torch.cholesky_solve(identity, torch.linalg.cholesky(a_vv))
                op[:, :, :n_rows] -= identity
                for index, one in zip(indices, op):
                    ops[index][a] = one.to(self.dtype)
            del block
        return ops


class _FoldSplits:
    """A fold's inner splits of one size (the validation rows ``V``, then the fold's held-out rows ``H``), scored
    together: per alpha, one batched product of the ``V`` blocks and one product of the ``H`` blocks stacked (``H`` is
    the same for every split) give every split's validation predictions, and one pass their Pearson r, instead of a
    chain of small calls per split (measured: docs/performance.md, "Banded ridge")."""

    def __init__(self, deletions, ops, device):
        self.n_splits, self.n_rows = len(deletions), len(deletions[0][0])
        held = {tuple(g[self.n_rows:]) for _, g in deletions}
        if len(held) != 1:
            raise ValueError("a fold's inner splits must share the held-out rows")
        self.rows = torch.as_tensor(np.stack([rows for rows, _ in deletions]), device=device)
        self.held = rows_of(list(held.pop()), device)
        ops = torch.stack(ops, dim=1)  # (n_alphas, n_splits, |V|, |G|)
        self.ops_rows = ops[..., :self.n_rows].contiguous()
        self.ops_held = ops[..., self.n_rows:].reshape(len(ops), self.n_splits * self.n_rows, -1)

    def targets(self, y, alpha_score):
        """The validation responses ``(n_splits, |V|, n_voxels)`` (centred for ``r``) and their sums of squares
        about the mean."""
        y_val = y[self.rows]
        centred = y_val - y_val.mean(dim=1, keepdim=True)
        return centred if alpha_score == "r" else y_val, (centred.double() ** 2).sum(dim=1)

    def score(self, fitted, residual, a, target, alpha_score):
        """The summed validation score of the splits at alpha ``a`` ``(n_voxels,)``, float64."""
        y_val, total = target
        prediction = torch.baddbmm(fitted[self.rows], self.ops_rows[a], residual[self.rows], alpha=-1)
        flat = prediction.view(self.n_splits * self.n_rows, -1)
        flat.addmm_(self.ops_held[a], residual[self.held], alpha=-1)
        if alpha_score in SCORES_OF_PREDICTIONS:
            return SCORES_OF_PREDICTIONS[alpha_score](prediction, y_val, total).sum(dim=0)
        # float32 sums over |V| rows (the alpha and gamma choices then agree with himalaya's float32 as before;
        # a float64 copy of the predictions cost 15% of a shape-(b) fit)
        numerator = torch.linalg.vecdot(prediction, y_val, dim=1).double()
        sums = prediction.sum(dim=1).double()
        squares = torch.linalg.vecdot(prediction, prediction, dim=1).double()
        variance = (squares - sums ** 2 / self.n_rows).clamp_min(0)
        denominator = torch.sqrt(variance * total)
        r = torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), torch.zeros_like(numerator))
        return r.sum(dim=0)


class BandedRidgeCV:
    """Voxel-wise banded ridge (one penalty per feature space) with nested cross-validation over runs.

    Parameters
    ----------
    alphas : sequence of float
        The grid of ``alpha`` (the penalty of the weighted kernel), tried with every gamma.
    n_iter : int or array ``(n_candidates, n_spaces)``
        Number of kernel-weight candidates drawn (:func:`dirichlet_gammas`), or the candidates themselves
        (rows on the simplex), as himalaya's ``n_iter``.
    concentration : float or sequence of float
        Concentrations of the Dirichlet draws, cycled through (himalaya's default ``[0.1, 1.0]``).
    inner_cv : InnerCV
        How (gamma, alpha) are chosen inside each outer fold.
    alpha_score : str
        What they are chosen on: ``r`` (validation Pearson r, himalaya's ``correlation_score``), ``r2``, ``huth-r2``.
    compute : Compute
        Device, dtype and memory budget (its ``form`` is not used: the fit is always in the dual form).
    seed : int
        Seed of the Dirichlet draws.

    Notes
    -----
    Ties between gammas go to the earlier one unless the later scores better by more than the dtype's machine
    epsilon, and ties between alphas to the larger alpha: himalaya's rules. What the sidecars say of it:
    :meth:`record`.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, n_iter=20, concentration=(0.1, 1.0), inner_cv=InnerCV(),
                 alpha_score="r", compute=Compute(), seed=0):
        self.alphas = tuple(sorted(float(a) for a in alphas))
        self.n_iter = n_iter
        self.concentration = concentration
        self.inner_cv = inner_cv
        self.alpha_score = alpha_score
        self.compute = compute
        self.seed = seed
        self._nested = NestedRidgeCV(self.alphas, inner_cv, alpha_score=alpha_score, compute=compute)

    def candidates(self, n_spaces):
        """The candidate kernel weights ``(n_candidates, n_spaces)``; one space has the one weight 1 (a ridge)."""
        if np.ndim(self.n_iter) == 0 and n_spaces == 1:
            return np.ones((1, 1))
        if np.ndim(self.n_iter) == 0:
            return dirichlet_gammas(int(self.n_iter), n_spaces, self.concentration, self.seed)
        gammas = np.asarray(self.n_iter, dtype=np.float64)
        if gammas.ndim != 2 or gammas.shape[1] != n_spaces or (gammas < 0).any():
            raise ValueError(f"n_iter as candidates must be an array of non-negative weights (n, {n_spaces})")
        return gammas

    def record(self):
        """What the sidecars say of it (as :func:`~bids_encoding.derivatives.sidecars.ridge_record`)."""
        given = np.ndim(self.n_iter) != 0
        return {"Solver": "banded ridge: random search over kernel weights, the dual form by deletion (torch)",
                "Alphas": list(self.alphas),
                "KernelWeights": np.asarray(self.n_iter).tolist() if given else "Dirichlet draws, first uniform",
                "NumberOfIterations": len(self.n_iter) if given else int(self.n_iter),
                "Concentration": np.atleast_1d(self.concentration).astype(float).tolist(),
                "Seed": self.seed, "AlphaScore": ALPHA_SCORE_NAMES[self.alpha_score],
                "OuterCV": "leave-one-stimulus-out (repeated runs of a stimulus held out together)",
                "InnerCV": self.inner_cv.record(), "Intercept": False,
                "Device": str(self.compute.device), "DType": str(self.compute.dtype).replace("torch.", "")}

    def fit_score(self, designs, bands, responses, stimulus_keys=None, keep_predictions=False, progress=None,
                  folds=None):
        """Nested cross-validation.

        Parameters
        ----------
        designs : list of array ``(n_scans_run, n_features)``
            One per run, the spaces' columns side by side, z-scored.
        bands : list of slice
            The columns of each feature space; they must cover every column once.
        responses : list of array ``(n_scans_run, n_voxels)``
            One per run, z-scored.
        stimulus_keys, keep_predictions, progress, folds
            As :meth:`NestedRidgeCV.fit_score`.

        Returns
        -------
        BandedResult
        """
        if len(designs) != len(responses) or not designs:
            raise ValueError("one response per design, and at least one run")
        bands = check_bands(bands, designs[0].shape[1])
        keys = list(range(len(designs))) if stimulus_keys is None else list(stimulus_keys)
        groups = stimulus_groups(keys)
        inner_cv = self._nested.inner_cv_for(len(groups))
        if len(groups) == 1:
            designs, responses, keys = split_one_stimulus(designs, responses, self._nested.outer_chunks,
                                                          self._nested.chunk_gap)
            groups = stimulus_groups(keys)
        with _tf32(self.compute.tf32), torch.no_grad():
            return self._fit(designs, bands, responses, groups, inner_cv, keep_predictions, progress, folds)

    def _fit(self, designs, bands, responses, groups, inner_cv, keep, progress, folds):
        device, dtype = self.compute.device, self.compute.dtype
        starts = np.cumsum([0] + [len(x) for x in designs])
        run_rows = [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:])]
        n_rows, n_features, n_voxels = int(starts[-1]), designs[0].shape[1], responses[0].shape[1]
        x = torch.cat([torch.as_tensor(np.asarray(d), dtype=torch.float64, device=device) for d in designs])
        gammas = self.candidates(len(bands))
        alphas = torch.tensor(self.alphas, dtype=dtype, device=device)
        slope = torch.log(alphas.double()) * 1e-10  # himalaya's tie-break towards larger alphas
        epsilon = torch.finfo(dtype).eps
        by_features = n_features < n_rows
        if not by_features:
            self.compute.check_kernel(n_rows, n_features)
        kernels = None if by_features else [x[:, band] @ x[:, band].T for band in bands]
        plans = []
        for fold, test_group in enumerate(groups):
            if folds is not None and fold not in folds:
                continue
            if len({len(designs[run]) for run in test_group}) > 1:
                raise ValueError("repeated runs of one stimulus must have the same number of scans")
            train_runs, group_rows = training_layout(designs, groups, test_group)
            train_index = np.concatenate([run_rows[run] for run in train_runs])
            held = np.concatenate([run_rows[run] for run in test_group])
            deletions = [(train_index[rows], np.concatenate([train_index[rows], held]))
                         for rows in inner_cv.validation_sets(group_rows, len(train_index))] + [(held, held)]
            plans.append((fold, test_group, held, deletions, run_rows[test_group[0]]))
        state = {plan[0]: _FoldState(len(plan[2]) // len(plan[1]), len(bands), n_voxels, keep) for plan in plans}
        max_group = max(len(g) for plan in plans for _, g in plan[3])
        copied_rows = sum(len(rows) for plan in plans for rows, _ in plan[3][:-1]
                          if not isinstance(rows_of(rows, "cpu"), slice))
        for gamma in gammas:
            gamma64 = torch.as_tensor(gamma, dtype=torch.float64, device=device)
            if by_features:
                scale = torch.cat([gamma64[i].sqrt().expand(b.stop - b.start) for i, b in enumerate(bands)])
                fit = _KernelFit(alphas, dtype, features=x * scale)
            else:
                fit = _KernelFit(alphas, dtype, kernel=sum(g * k for g, k in zip(gamma64, kernels)))
            shares = SpaceShares(x, bands, gamma64, fit.eigenvectors64)
            fit.full_hat = self.compute.room_for_hat(fit.n_rows)
            block, room = self.compute.dual_block_size(fit, (max_group, n_voxels, len(plans), copied_rows, 0),
                                                       len(self.alphas))
            blocks = [slice(start, min(start + block, n_voxels)) for start in range(0, n_voxels, block)]
            for batch in self.compute.operator_batches(plans, room, len(self.alphas)):
                flat = iter(fit.operators([deletion for plan in batch for deletion in plan[3]]))
                work = []
                for plan in batch:
                    ops = [next(flat) for _ in plan[3]]
                    sizes = {}
                    for index, (rows, g) in enumerate(plan[3][:-1]):
                        sizes.setdefault((len(rows), len(g)), []).append(index)
                    work.append((plan, ops[-1:], [_FoldSplits([plan[3][i] for i in indices], [ops[i] for i in indices],
                                                         device) for indices in sizes.values()]))
                for voxels in blocks:
                    y = torch.cat([self._nested._columns(r, voxels) for r in responses])
                    z, outside = fit.rotate(y)
                    targets = [[split.targets(y, self.alpha_score) for split in splits] for _, _, splits in work]
                    scores = [torch.zeros((len(alphas), y.shape[1]), dtype=torch.float64, device=device)
                              for _ in work]
                    for a, direction in enumerate(fit.directions(z, outside, y)):
                        fitted, residual = fit.full_fit(z, outside, a, y, direction)
                        for (_, _, splits), fold_targets, fold_scores in zip(work, targets, scores):
                            for split, target in zip(splits, fold_targets):
                                fold_scores[a] += split.score(fitted, residual, a, target, self.alpha_score)
                    for (plan, ops, _), fold_scores in zip(work, scores):
                        width = voxels.stop - voxels.start
                        mean = fold_scores[:, :width] / (len(plan[3]) - 1)
                        choice = (mean + slope[:, None]).argmax(dim=0)
                        value = (mean + slope[:, None]).gather(0, choice[None])[0]
                        fold = state[plan[0]]
                        best = torch.as_tensor(fold.best[voxels], device=device)
                        improved = torch.nonzero(value > best + epsilon).flatten()
                        if len(improved):
                            columns = improved.cpu().numpy() + voxels.start
                            fold.best[columns] = value[improved].cpu().numpy()
                            fold.validation_score[columns] = mean.gather(0, choice[None])[0][improved].cpu().numpy()
                            fold.gamma[:, columns] = gamma[:, None]
                            fold.alpha[columns] = alphas[choice[improved]].cpu().numpy()
                            self._refit(fit, shares, plan, ops[-1], (y, z, outside), (improved, choice[improved]),
                                        fold, columns)
        result = BandedResult(*(np.full((len(groups), n_voxels), np.nan, np.float32) for _ in range(4)),
                              split_r=np.full((len(bands), len(groups), n_voxels), np.nan, np.float32),
                              split_r2=np.full((len(bands), len(groups), n_voxels), np.nan, np.float32),
                              gammas=np.full((len(groups), len(bands), n_voxels), np.nan, np.float32))
        for plan in plans:
            fold, number = state[plan[0]], plan[0]
            for name in ("test_r", "test_r2", "validation_score", "alpha"):
                getattr(result, name)[number] = getattr(fold, name)
            result.split_r[:, number], result.split_r2[:, number] = fold.split_r, fold.split_r2
            result.gammas[number] = fold.gamma
            if keep:
                result.predictions.append(fold.prediction)
                result.targets.append(fold.target)
            result.forms.append("dual")
            if progress is not None:
                progress()
        return result

    def _refit(self, fit, shares, plan, op_held, block, improved, fold, voxels):
        """Refit on the outer fold's training scans at each improved voxel's alpha and score the held-out stimulus,
        jointly and per space. ``block``: the voxel block's ``(y, z, outside)`` (targets and their rotation);
        ``improved``: ``(columns, choice)``, the improved voxels among the block's and their alphas' indices.

        The held-out prediction is Deletion's ``ŷ_H = ŷ_H(all) - M_H r_H``. The fold's dual weights are those of
        the all-scans fit to ``y`` with ``y_H`` replaced by ``ŷ_H`` (block inversion of ``K + αI``: they are 0 on
        the held-out scans), ``w = F c`` with ``c = diag(1 / (λ + α)) Fᵀ y*`` and ``Fᵀ y* = z + F_Hᵀ (ŷ_H - y_H)``:
        a correction of the block's eigen-coordinates on the held-out rows only, from which
        :class:`SpaceShares` gives each space's prediction ``γ_i K_i[test] w``. (Forming ``w`` on all scans cost
        ``2 n r`` per voxel, 70% of a shape-(b) fit; measured: docs/performance.md, "Banded ridge".)"""
        _, test_group, held, _, test_rows = plan
        (y, z, outside), (columns, choice) = block, improved
        held_rows = rows_of(held, y.device)
        y, z = y[:, columns], z[:, columns]
        outside = outside[:, columns] if outside is not None else None
        prediction = fit.fitted(z, choice, held_rows)
        residual = fit.residual(z, outside, choice, held_rows)
        for a in choice.unique():
            picked = choice == a
            prediction[:, picked] -= op_held[a] @ residual[:, picked]
        # the correction is small next to z: float32 is enough (split r to 1e-4 of himalaya's float64, tested)
        coordinates = z.double() + (fit.eigenvectors[held_rows].T @ (prediction - y[held_rows])).double()
        coefficients = coordinates / (fit.eigenvalues[:, None] + fit.alphas64[choice][None, :])
        n_test = len(held) // len(test_group)
        joint = prediction[:n_test]
        split = shares(test_rows, coefficients, joint)
        target = y[held_rows].reshape(len(test_group), n_test, -1).mean(dim=0)
        fold.test_r[voxels] = pearson_r(joint, target).cpu().numpy()
        fold.test_r2[voxels] = r2_score(joint, target).cpu().numpy()
        fold.split_r[:, voxels] = correlation_split(target, split).cpu().numpy()
        fold.split_r2[:, voxels] = r2_split(target, split).cpu().numpy()
        if fold.prediction is not None:
            fold.prediction[:, voxels] = joint.cpu().numpy()
            fold.target[:, voxels] = target.cpu().numpy()


class _FoldState:
    """The best candidate so far of every voxel in one outer fold, and its held-out scores."""

    def __init__(self, n_test, n_spaces, n_voxels, keep):
        self.best = np.full(n_voxels, -np.inf)
        self.validation_score, self.alpha, self.test_r, self.test_r2 = (np.zeros(n_voxels, np.float32)
                                                                        for _ in range(4))
        self.split_r, self.split_r2 = (np.zeros((n_spaces, n_voxels), np.float32) for _ in range(2))
        self.gamma = np.zeros((n_spaces, n_voxels), np.float32)
        self.prediction = np.zeros((n_test, n_voxels), np.float32) if keep else None
        self.target = np.zeros((n_test, n_voxels), np.float32) if keep else None

