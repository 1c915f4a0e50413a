"""Ridge regression with one alpha per voxel and nested cross-validation, in torch.

For a training set with Gram matrix ``XᵀX = V diag(λ) Vᵀ`` (float64 ``eigh``)
and ``C = XᵀY``, the ridge weights for alpha ``α`` are
``V diag(1 / (λ + α)) Vᵀ C``. Validation predictions for every alpha at once
are one product ``[P / (λ + α)]_α · (Vᵀ C)`` with ``P = X_val V`` fixed per
split, so each extra alpha costs ``2 n_val p`` per voxel, where himalaya forms
new weights per alpha (``2 p² + 2 n_val p``). ``XᵀX`` and ``XᵀY`` of each inner
split are the outer fold's minus the validation rows', so no split touches its
training rows again. Everything that depends on X alone (eigenvectors, ``P``)
is computed once per split and shared by all voxels — and by all
participants who heard the same stimulus, whose voxels are simply
concatenated. Voxels go through in blocks sized to the memory budget.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from bids_encoding.backend import available_memory
from bids_encoding.ridge.cv import ALPHA_SCORE_NAMES, ALPHA_SCORES, DEFAULT_ALPHAS, INNER_SCHEMES, InnerCV
from bids_encoding.ridge.scoring import pearson_r, r2_score, zscore
from bids_encoding.stimuli import stimulus_groups

BLOCK_MULTIPLE = 64
# Bump when the fit, the alphas chosen or the scores change for the same settings (docs/usage.md "Versions").
# 1: as of bids_encoding 0.2.0 (the dual form's float64 residual).
RIDGE_CODE_VERSION = 1
LIBRARY_OVERHEAD = 32 * 2 ** 20  # workspaces of the linear-algebra libraries, counted in --mem


@contextmanager
def _tf32(enabled):
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


@dataclass
class CVResult:
    """Outcome of nested cross-validation for one design.

    Attributes
    ----------
    test_r, test_r2 : numpy.ndarray ``(n_folds, n_voxels)``
        Pearson r and R² on each held-out stimulus.
    validation_score : numpy.ndarray ``(n_folds, n_voxels)``
        Inner-validation score (r or R², mean over inner splits) at the alpha
        chosen in each outer fold: what layers are chosen on, never the test
        data.
    alpha : numpy.ndarray ``(n_folds, n_voxels)``
        Alpha chosen in each outer fold.
    forms : list of str
        The form of each computed outer fold (:meth:`NestedRidgeCV._form`).
    predictions, targets : list of numpy.ndarray ``(n_test, n_voxels)``
        Held-out predictions and targets per fold (``keep_predictions=True``).
    """

    test_r: np.ndarray
    test_r2: np.ndarray
    validation_score: np.ndarray
    alpha: np.ndarray
    predictions: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    forms: list = field(default_factory=list)  # per computed outer fold: "primal" or "dual"

    def fold(self, fold):
        """This result restricted to one computed outer fold (``fit_score(..., folds=[fold])``)."""
        return CVResult(*(getattr(self, name)[fold:fold + 1] for name in ("test_r", "test_r2", "validation_score",
                                                                         "alpha")),
                        predictions=self.predictions, targets=self.targets, forms=self.forms)

    @property
    def mean_r(self):
        return self.test_r.mean(axis=0)

    @property
    def mean_r2(self):
        return self.test_r2.mean(axis=0)


class _Eigen:
    """Eigendecomposition of a training Gram matrix and its projection of the rows to predict."""

    def __init__(self, gram, x_predict, dtype):
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        self.eigenvalues = eigenvalues.clamp_min(0).to(dtype)
        self.eigenvectors = eigenvectors.to(dtype)
        self.projected = x_predict @ self.eigenvectors  # P = X_predict V

    def predict(self, cross, alphas_per_voxel):
        """``P diag(1 / (λ + α_v)) Vᵀ C`` for one alpha per column of ``C = XᵀY``."""
        return self.projected @ ((self.eigenvectors.T @ cross)
                                 / (self.eigenvalues[:, None] + alphas_per_voxel[None, :]))


class _ValidationScorer:
    """Validation score of every alpha for one inner split, from the split's training ``XᵀY``.

    ``M_α = P diag(1/(λ + α)) Vᵀ`` is formed once per split, so the
    predictions of all alphas are one product ``[M_α]_α · XᵀY`` per block of
    voxels and no per-block rotation into the eigenbasis is needed.
    """

    def __init__(self, split, alphas, score="r"):
        inverse = 1.0 / (split.eigenvalues[None, :] + alphas[:, None])  # (A, p)
        n_alphas, (n_rows, n_features) = len(alphas), split.projected.shape
        shrunk = split.projected[None] * inverse[:, None, :]  # (A, n_val, p)
        self.operator = (shrunk.reshape(n_alphas * n_rows, n_features) @ split.eigenvectors.T)
        self.operator_mean = self.operator.reshape(n_alphas, n_rows, n_features).mean(dim=1)  # (A, p)
        self.n_alphas = n_alphas
        self.score = score

    def scores(self, cross, y_val):
        """Pearson r or R² ``(n_alphas, n_voxels)`` of the validation predictions."""
        n_rows = y_val.shape[0]
        prediction = (self.operator @ cross).reshape(self.n_alphas, n_rows, -1)
        y_centered = y_val - y_val.mean(dim=0, keepdim=True)
        total = (y_centered.double() ** 2).sum(dim=0)
        if self.score in SCORES_OF_PREDICTIONS:
            return SCORES_OF_PREDICTIONS[self.score](prediction, y_val, total).to(cross.dtype)
        # centring through operator_mean, fused with the prediction, for speed
        prediction -= (self.operator_mean @ cross)[:, None, :]
        return _r_centered(prediction, y_centered, total).to(cross.dtype)


def _r_centered(prediction, y_centered, total):
    """Pearson r (float64) of centred predictions ``(..., n_rows, n_voxels)`` with centred targets whose sums
    of squares are ``total``; the same value as ridge.scoring.pearson_r."""
    numerator = (prediction * y_centered).sum(dim=-2).double()
    denominator = torch.sqrt(torch.linalg.vector_norm(prediction, dim=-2).double() ** 2 * total)
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), torch.zeros_like(numerator))


def _r2(prediction, y_val, total):
    """R² (float64) of predictions ``(..., n_rows, n_voxels)``; 0 where the target is constant."""
    residual = torch.linalg.vector_norm(prediction - y_val, dim=-2).double() ** 2
    return torch.where(total > 0, 1 - residual / total.clamp_min(1e-300), torch.zeros_like(residual))


def _huth_r2(prediction, y_val, total):
    """``ridge_corr``'s score with ``use_corr=False`` (Antonello et al.; ridge_utils/ridge.py:250-279):
    ``R = 1 - var(y - ŷ) / ((1 + var(y)) / 2)`` (population variances; the denominator as their code writes
    it), then ``sign(R) sqrt(|R|)``, float64."""
    n_rows = y_val.shape[-2]
    residual = (y_val - prediction).double()
    residual_var = ((residual - residual.mean(dim=-2, keepdim=True)) ** 2).mean(dim=-2)
    explained = 1 - residual_var / ((1 + total / n_rows) / 2)
    return torch.sign(explained) * torch.sqrt(explained.abs())


# the validation scores computed from the uncentred predictions (Pearson r has its own, fused centring)
SCORES_OF_PREDICTIONS = {"r2": _r2, "huth-r2": _huth_r2}


def _rows(index, device):
    """Rows as a slice when they are contiguous (a view, no copy), else as an index tensor."""
    index = np.asarray(index)
    if len(index) and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return torch.as_tensor(index, device=device)


def _block(matrix, rows, columns):
    """``matrix[rows][:, columns]`` for rows and columns given by :func:`_rows` (a view when both are slices)."""
    return matrix[rows][:, columns] if isinstance(rows, torch.Tensor) else matrix[rows, columns]


class _Split:
    """One inner split of the dual form: its validation rows, predicted with the outer test rows ``held`` also
    deleted (``G`` = the validation rows, then ``held``)."""

    def __init__(self, rows, held, device):
        self.rows, self.held, self.n_rows = _rows(rows, device), _rows(held, device), len(rows)

    def targets(self, y):
        """The validation responses (a view when the rows are contiguous) and their sums of squares about the
        mean."""
        y_val = y[self.rows]
        return y_val, ((y_val - y_val.mean(dim=0, keepdim=True)).double() ** 2).sum(dim=0)

    def predict(self, fitted, residual, op):
        """``ŷ_V(all) - M_G (y - ŷ(all))_G``, from the two pieces of ``G``."""
        prediction = torch.addmm(fitted[self.rows], op[:, :self.n_rows], residual[self.rows], alpha=-1)
        return prediction.addmm_(op[:, self.n_rows:], residual[self.held], alpha=-1)

    @staticmethod
    def score(prediction, target, alpha_score):
        y_val, total = target
        if alpha_score in SCORES_OF_PREDICTIONS:
            return SCORES_OF_PREDICTIONS[alpha_score](prediction, y_val, total)
        # with the prediction centred, sum(p_c · y) = sum(p_c · y_c): no centred copy of y is kept
        return _r_centered(prediction - prediction.mean(dim=0, keepdim=True), y_val, total)


class EigenRidge:
    """Ridge with a grid of alphas, solved through the eigendecomposition of ``XᵀX`` (the default solver).

    The solver interface that :class:`NestedRidgeCV` uses, and that another
    solver (a banded ridge, with one alpha per feature band) implements:

    - ``candidates``: the hyperparameter candidates, one row each;
    - ``scorer(gram, x_val)``: an object whose ``scores(cross, y_val)`` gives
      the validation score ``(n_candidates, n_voxels)`` of every candidate
      from the split's training ``XᵀY``;
    - ``predictor(gram, x_predict)``: an object whose ``predict(cross,
      candidate_per_voxel)`` gives the predictions of the refit model;
    - ``record()``: what the sidecars say about it.
    """

    def __init__(self, alphas, score="r", dtype=torch.float32, device="cpu"):
        self.alphas = torch.tensor(sorted(float(a) for a in alphas), dtype=dtype, device=device)
        self.score = score
        self.dtype = dtype

    @property
    def candidates(self):
        return self.alphas

    def scorer(self, gram, x_val):
        return _ValidationScorer(_Eigen(gram, x_val, self.dtype), self.alphas, self.score)

    def predictor(self, gram, x_predict):
        return _EigenPredictor(_Eigen(gram, x_predict, self.dtype), self.alphas)

    def record(self):
        return {"Solver": "eigendecomposition of XᵀX (torch)", "Alphas": [float(a) for a in self.alphas]}


class _EigenPredictor:
    def __init__(self, eigen, alphas):
        self.eigen, self.alphas = eigen, alphas

    def predict(self, cross, choice):
        return self.eigen.predict(cross, self.alphas[choice])


SOLVERS = {"ridge": EigenRidge}
FORMS = ("auto", "primal", "dual")


def _randomized_kernel(x, rank, seed, oversampling=10, power_iterations=4):
    """The ``rank`` leading eigenpairs of ``X Xᵀ`` from a randomized range finder (Halko et al. 2011:
    ``torch.svd_lowrank`` with ``power_iterations`` power iterations), without forming the kernel: ridge on the
    best rank-``rank`` approximation of the features, an approximation of the exact fit."""
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        left, singular, _ = torch.svd_lowrank(x, q=min(rank + oversampling, min(x.shape)), niter=power_iterations)
    return singular[:rank] ** 2, left[:, :rank]


class _Deletion:
    """Every held-out prediction of the nested cross-validation from ONE fit on all scans (the dual form).

    With ``H = K (K + αI)⁻¹`` the hat matrix of ridge fitted on all ``n`` scans (kernel ``K = X Xᵀ``), the
    ridge fitted without the scans ``G`` predicts them as (block inversion of ``K + αI``)::

        ŷ_G = ŷ_G(all) - M_G (y - ŷ(all))_G,    M_G = (I - H_GG)⁻¹ H_GG

    so the validation predictions of an inner split (``G`` = the outer test scans and the split's
    validation scans) cost ``|V| × |G|`` per voxel and alpha instead of ``|V| × rank`` with the split's own
    decomposition, and ``ŷ(all)`` and ``y - ŷ(all)`` are shared by all splits. ``y - ŷ(all)`` is formed from
    the eigenbasis (``F diag(α / (λ + α)) Fᵀ y``), never as a difference that cancels.
    The kernel, its eigendecomposition and ``M_G`` are float64 (the small eigenvalues and the
    ``(I - H_GG)⁻¹`` of small alphas need it); the per-voxel products are in the working dtype.
    """

    def __init__(self, x_all, alphas, dtype, tolerance=1e-10, rank=None, seed=0):
        x64 = x_all.double()
        if rank is not None and rank < min(x64.shape):
            eigenvalues, eigenvectors = _randomized_kernel(x64, rank, seed)
        else:
            eigenvalues, eigenvectors = torch.linalg.eigh(x64 @ x64.T)
        kept = eigenvalues > eigenvalues.max().clamp_min(1e-300) * tolerance
        self.eigenvalues, self.eigenvectors64 = eigenvalues[kept], eigenvectors[:, kept]
        # the kernel's null space, when it is the smaller part: then y's part outside the span costs 4 n (n - r)
        self.null = eigenvectors[:, ~kept].to(dtype) if 2 * (~kept).sum() < kept.sum() and rank is None else None
        self.alphas64 = alphas.double()
        self.shrinkage = (self.eigenvalues[None, :] / (self.eigenvalues[None, :] + self.alphas64[:, None]))  # (A, r)
        self.eigenvectors = self.eigenvectors64.to(dtype)
        self.n_rows, self.rank = self.eigenvectors.shape
        self.dtype = dtype
        self.full_hat = True  # the n × n hat matrix per alpha (set False when it does not fit the memory budget)

    def operators(self, deletions):
        """``M_G`` of every deletion ``(rows, G)`` (``rows`` first in ``G``), as ``(n_alphas, len(rows), len(G))``
        tensors in the working dtype.

        Only the ``rows`` of ``M_G = (I - H_GG)⁻¹ - I`` are needed. With ``A = I - H`` (positive definite: its
        eigenvalues lie in ``[α / (λ_max + α), 1]``), ``V = rows`` and ``R`` the rest of ``G``, they are
        ``[S⁻¹, -S⁻¹ A_VR A_RR⁻¹]`` with the Schur complement ``S = A_VV - A_VR A_RR⁻¹ A_RV``; ``A_RR`` (the outer
        test scans, shared by a fold's inner splits) is factored once. All in float64.

        The blocks of ``A`` come from the whole hat matrix when ``full_hat`` (fastest: half of it is computed),
        else from the eigenvectors, block by block, without any ``n × n`` matrix (memory ``O(n |R|)``).
        """
        ops = [torch.empty((len(self.alphas64), len(rows), len(g)), dtype=self.dtype,
                           device=self.eigenvectors.device) for rows, g in deletions]
        by_rest = {}
        for index, (rows, g) in enumerate(deletions):
            by_rest.setdefault(tuple(np.asarray(g)[len(rows):].tolist()), []).append(index)
        device = self.eigenvectors64.device
        for a, shrinkage in enumerate(self.shrinkage):
            block = self._complement_blocks(shrinkage)
            for rest, indices in by_rest.items():
                rest = _rows(rest, device) if rest else None
                rest_factor = torch.linalg.cholesky(block(rest, rest)) if rest is not None else None
                for index in indices:
                    rows = _rows(deletions[index][0], device)
                    a_vv = block(rows, rows)
                    if rest_factor is None:
                        op = torch.cholesky_inverse(torch.linalg.cholesky(a_vv))
                    else:
                        a_rv = block(rest, rows)
                        weights = torch.cholesky_solve(a_rv, rest_factor).T  # A_VR A_RR⁻¹
                        schur_inverse = torch.cholesky_inverse(torch.linalg.cholesky(a_vv - weights @ a_rv))
                        op = torch.cat([schur_inverse, -schur_inverse @ weights], dim=1)
                    op[:, :len(deletions[index][0])].diagonal().sub_(1)
                    ops[index][a] = op.to(self.dtype)
            del block  # the hat matrix of this alpha goes before the next one is formed
        return ops

    def _complement_blocks(self, shrinkage):
        """A function ``(rows, columns) -> (I - H)[rows][:, columns]`` at one alpha's shrinkage."""
        if self.full_hat:
            complement = -self._hat(shrinkage)
            complement.diagonal().add_(1)
            return lambda rows, columns: _block(complement, rows, columns)
        f = self.eigenvectors64

        def block(rows, columns):
            values = -(f[rows] * shrinkage[None, :]) @ f[columns].T
            if rows is columns or (isinstance(rows, slice) and rows == columns):
                values.diagonal().add_(1)
            return values
        return block

    def _hat(self, shrinkage, rows_per_product=512):
        """``H = F diag(shrinkage) Fᵀ`` (float64), its upper triangle of blocks computed and mirrored."""
        f, n = self.eigenvectors64, self.n_rows
        hat = torch.empty((n, n), dtype=f.dtype, device=f.device)
        for start in range(0, n, rows_per_product):
            stop = min(start + rows_per_product, n)
            hat[start:stop, start:] = (f[start:stop] * shrinkage[None, :]) @ f[start:].T
            hat[stop:, start:stop] = hat[start:stop, stop:].T
        return hat

    def rotate(self, y):
        """Eigen-coordinates of a block of responses, and the part of it outside the kernel's span (``None`` when
        it is only rounding: responses z-scored per run have none, the kernel of features z-scored per run
        having the runs' constants for null space)."""
        z = self.eigenvectors.T @ y
        if self.rank == self.n_rows:
            return z, None
        outside = self.null @ (self.null.T @ y) if self.null is not None else y - self.eigenvectors @ z
        negligible = torch.linalg.vector_norm(outside, dim=0) <= 1e-5 * torch.linalg.vector_norm(y, dim=0)
        return z, None if negligible.all() else outside

    def directions(self, z, outside, y):
        """For each alpha, which of ``ŷ(all)`` and ``y - ŷ(all)`` one product gives for this block of voxels, the
        other being its difference with ``y``: ``"fitted"``, ``"residual"`` or ``None`` (two products).

        The difference is taken only where, in every voxel of the block, the product's complement is at least
        ``|y| / 8`` (norms from the eigen-coordinates, for all alphas in two small products), so it adds at
        most ``8 ε |y|``: no more than ``8 ×`` the rounding of the product itself.
        """
        squares = z * z
        shrinkage = self.shrinkage.to(self.dtype)
        fitted = torch.sqrt((shrinkage ** 2) @ squares)  # (n_alphas, n_voxels)
        residual = (1 - shrinkage) ** 2 @ squares
        if outside is not None:
            residual += torch.linalg.vector_norm(outside, dim=0) ** 2
        floor = torch.linalg.vector_norm(y, dim=0) / 8
        directions = []
        for fitted_norm, residual_norm in zip(fitted, torch.sqrt(residual)):
            if (residual_norm >= floor).all():
                directions.append("fitted")
            elif outside is None and (fitted_norm >= floor).all():
                directions.append("residual")
            else:
                directions.append(None)
        return directions

    def full_fit(self, z, outside, alpha_index, y, direction):
        """``ŷ(all)`` and ``y - ŷ(all)`` at one alpha on all rows; one product for a ``direction``
        (:meth:`directions`), the other its difference with ``y``."""
        if direction == "fitted":
            fitted = self.fitted(z, alpha_index)
            return fitted, y - fitted
        residual = self.residual(z, outside, alpha_index)
        if direction == "residual":
            return y - residual, residual
        return self.fitted(z, alpha_index), residual

    def fitted(self, z, alpha_index, rows=slice(None)):
        """``ŷ(all)`` on ``rows`` at one alpha (index, or one index per column)."""
        return self.eigenvectors[rows] @ (self._shrinkage(alpha_index).to(self.dtype) * z)

    def residual(self, z, outside, alpha_index, rows=slice(None)):
        """``y - ŷ(all)`` on ``rows`` at one alpha (index, or one index per column), in float64 then cast: the
        deletions multiply it by up to (λ + α) / α. With many more features than scans, small alphas all give
        nearly the minimum-norm fit, and a float32 residual moved their validation scores by ~3e-6, more than they
        differ (tests/test_ridge.py; a float64 z is not needed, measured)."""
        shrinkage = self._shrinkage(alpha_index)
        residual = (self.eigenvectors64[rows] @ ((1 - shrinkage) * z.to(torch.float64))).to(self.dtype)
        if outside is not None:
            residual += outside[rows]
        return residual

    def _shrinkage(self, alpha_index):
        shrinkage = self.shrinkage[alpha_index]
        return shrinkage[:, None] if shrinkage.dim() == 1 else shrinkage.T


def _training_layout(designs, groups, test_group):
    """The training runs of an outer fold, in order, and the row ranges of each training stimulus group in
    their concatenation."""
    train_runs = [run for group in groups if group is not test_group for run in group]
    offsets = dict(zip(train_runs, np.cumsum([0] + [len(designs[run]) for run in train_runs])))
    group_rows = [[(offsets[run], offsets[run] + len(designs[run])) for run in group]
                  for group in groups if group is not test_group]
    return train_runs, group_rows


def shape_form(n_train, n_features):
    """``primal`` (eigendecompositions of ``XᵀX`` per split) when the features are fewer than half the
    training scans, else ``dual`` (:class:`_Deletion`). Measured on 2 CPU cores, 9 runs of 310 scans: p = 768,
    primal 57.0 s and dual 62.0 s for 20k voxels; p = 2,048, primal 95.8 s and dual 24.1 s for 5k voxels
    (benchmarks/bench_ridge.py --compare-forms); at 9 runs of 280 scans and 26k voxels, p = 768: primal 54 s,
    dual 69 s (benchmarks/bench_study.py; docs/performance.md)."""
    return "dual" if 2 * n_features > n_train else "primal"


def split_one_stimulus(designs, responses, n_chunks, gap, min_scans=10):
    """Cut every presentation of a single stimulus into ``n_chunks`` contiguous chunks, drop ``gap`` scans
    after each border, and z-score each chunk; chunk ``j`` of every presentation gets key ``j``."""
    n_scans = len(designs[0])
    bounds = np.linspace(0, n_scans, n_chunks + 1).round().astype(int)
    starts = bounds[:-1] + np.r_[0, np.full(n_chunks - 1, gap)]
    if (bounds[1:] - starts).min() < min_scans:
        raise ValueError(f"a single stimulus of {n_scans} scans is too short for cross-validation: {n_chunks} "
                         f"chunks of at least {min_scans} scans with {gap} scans dropped between them need "
                         f"{n_chunks * min_scans + (n_chunks - 1) * gap}")
    pieces = [(zscore(x[a:b]).astype(np.float32), zscore(y[a:b]).astype(np.float32), j)
              for j, (a, b) in enumerate(zip(starts, bounds[1:])) for x, y in zip(designs, responses)]
    return [p[0] for p in pieces], [p[1] for p in pieces], [p[2] for p in pieces]


@dataclass
class _TestedBlock:
    """Held-out scores of one block of voxels (padding columns dropped)."""

    test_r: np.ndarray
    test_r2: np.ndarray
    alpha: np.ndarray
    prediction: np.ndarray | None = None
    target: np.ndarray | None = None


def working_memory(n_rows, n_features, n_val, n_test, n_alphas, itemsize=4):
    """Bytes of the ridge's work arrays: ``(fixed, per_voxel)``, for a block of voxels."""
    per_voxel = itemsize * (3 * n_rows + 3 * n_features + 3 * n_alphas * n_val + 4 * n_test + 64)
    fixed = itemsize * (n_alphas * n_val * n_features + 4 * n_features ** 2) + LIBRARY_OVERHEAD
    return fixed, per_voxel


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
    device : str
        ``cpu`` or ``cuda``.
    mem : int or None
        Bytes the fit may use beyond the data; ``None``: a quarter of the
        available RAM, or 80% of the GPU's free memory.
    voxel_chunk : int or None
        Voxels per block, overriding ``mem``.
    tf32 : bool
        Allow TF32 matrix products on the GPU.
    solver : str
        A name in ``SOLVERS`` (see :class:`EigenRidge` for the interface).
    form : {"auto", "primal", "dual"}
        ``auto``: primal when the features are fewer than half the training scans, else dual
        (:func:`shape_form`); the two give the same results. ``rank``: see below.
    rank : int or None
        The dual form on a randomized rank-``rank`` approximation of the features (approximate; ``None``:
        exact).
    outer_chunks, chunk_gap : int
        With a single stimulus, the outer folds are ``outer_chunks``
        contiguous chunks of it, ``chunk_gap`` scans dropped after each
        border between chunks (:meth:`cv_scheme`).
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, inner_cv=InnerCV(), alpha_per_voxel=True, device="cpu", mem=None,
                 voxel_chunk=None, tf32=False, dtype=torch.float32, alpha_score="r", solver="ridge", outer_chunks=5,
                 chunk_gap=5, form="auto", rank=None):
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}")
        if rank is not None and (form == "primal" or solver != "ridge"):
            raise ValueError("a reduced rank exists for the dual form of the 'ridge' solver only")
        self.form = form
        self.rank = rank
        if alpha_score not in ALPHA_SCORES:
            raise ValueError(f"alpha_score must be one of {ALPHA_SCORES}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {sorted(SOLVERS)}")
        if form == "dual" and solver != "ridge":
            raise ValueError("the dual form exists for the 'ridge' solver only")
        self.solver = solver
        self.outer_chunks = outer_chunks
        self.chunk_gap = chunk_gap
        self.alphas = tuple(sorted(float(a) for a in alphas))
        self.alpha_score = alpha_score
        self.inner_cv = inner_cv
        self.alpha_per_voxel = alpha_per_voxel
        self.device = device
        self.mem = mem
        self.voxel_chunk = voxel_chunk
        self.tf32 = tf32
        self.dtype = dtype
        # on a CPU, blocks that keep the per-alpha predictions near the caches are fastest (measured)
        self.max_block = 1024 if not str(device).startswith("cuda") else 16384

    def record(self):
        """Settings for the sidecars."""
        return {"Alphas": list(self.alphas),
                "AlphaChoice": "per voxel" if self.alpha_per_voxel else "shared by the voxels of each participant",
                "AlphaScore": ALPHA_SCORE_NAMES[self.alpha_score],
                "OuterCV": "leave-one-stimulus-out (repeated runs of a stimulus held out together)",
                "InnerCV": self.inner_cv.record(), "Score": "Pearson r on the held-out stimulus, mean over folds",
                "Intercept": False, "Solver": SOLVERS[self.solver](self.alphas).record()["Solver"],
                "Form": {"auto": "primal (an eigendecomposition of XᵀX per split) when the features are fewer "
                                 "than half the training scans, else dual (one eigendecomposition of the kernel X Xᵀ "
                                 "of all scans; each split's held-out predictions by deleting its held-out scans "
                                 "from that fit): the same alphas and predictions; FormUsed says which one ran",
                         "primal": "primal (an eigendecomposition of XᵀX per split)",
                         "dual": "dual (one eigendecomposition of the kernel X Xᵀ of all scans; each split's "
                                 "held-out predictions by deleting its held-out scans from that fit)"}[self.form],
                **({"Rank": self.rank, "RankMethod": "approximate: ridge on the best rank-k approximation of the "
                    "features, from a randomized range finder (torch.svd_lowrank, 4 power iterations, seed 0)"}
                   if self.rank is not None else {}),
                "Device": str(self.device),
                "DType": str(self.dtype).replace("torch.", ""), "TF32": bool(self.tf32)}

    def cv_scheme(self, n_stimuli):
        """Outer and inner cross-validation for this many distinct stimuli (for the sidecars).

        Three or more: leave one stimulus out, the inner scheme inside. Two:
        leave one stimulus out, alphas (and layers) chosen on contiguous
        chunks of the training stimulus (or by the inner scheme itself, where
        it splits one stimulus: ``huth-bootstrap``). One: contiguous chunks of the
        stimulus are the outer folds, with a gap of dropped scans after each
        border, and leave one chunk out inside.
        """
        if n_stimuli >= 3:
            return {"OuterCV": "leave-one-stimulus-out (repeated runs of a stimulus held out together)",
                    "InnerCV": self.inner_cv.record()}
        if n_stimuli == 2:
            inner_cv = self._inner_cv(n_stimuli)
            return {"OuterCV": "leave-one-stimulus-out (2 stimuli)", "InnerCV": inner_cv.record(),
                    **({} if inner_cv is self.inner_cv else {
                        "Fallback": "two stimuli: alphas and layers chosen on contiguous chunks of the training "
                                    "stimulus"})}
        return {"OuterCV": f"{self.outer_chunks} contiguous chunks of the one stimulus, {self.chunk_gap} scans "
                           "dropped after each border (repeats of the stimulus chunked alike, held out together)",
                "InnerCV": {"Scheme": "loro", "Unit": "chunk"},
                "Fallback": "one stimulus: chunks of it are the cross-validation folds",
                "OuterChunks": self.outer_chunks, "ChunkGap": self.chunk_gap}

    def _inner_cv(self, n_stimuli):
        """The inner scheme run with this many distinct stimuli: with two, contiguous chunks of the one training
        stimulus take the place of a scheme that needs several (``InnerScheme.with_two_stimuli``)."""
        if n_stimuli == 2 and not INNER_SCHEMES[self.inner_cv.scheme].with_two_stimuli:
            return InnerCV("chunks", n_chunks=self.inner_cv.n_chunks)
        return self.inner_cv

    def block_size(self, n_rows, n_features, n_val, n_test, n_voxels):
        """Voxels per block so that the per-block work arrays fit the memory budget."""
        if self.voxel_chunk:
            return max(BLOCK_MULTIPLE, int(self.voxel_chunk) // BLOCK_MULTIPLE * BLOCK_MULTIPLE)
        budget = self._budget()
        fixed, per_voxel = working_memory(n_rows, n_features, n_val, n_test, len(self.alphas),
                                          torch.finfo(self.dtype).bits // 8)
        block = min(int((budget - fixed) // per_voxel), self.max_block) // BLOCK_MULTIPLE * BLOCK_MULTIPLE
        if block < BLOCK_MULTIPLE:
            need = fixed + BLOCK_MULTIPLE * per_voxel
            raise MemoryError(f"the ridge fit needs at least {need / 2 ** 20:.0f} MiB of working memory "
                              f"(--mem gives {budget / 2 ** 20:.0f} MiB)")
        return min(block, max(BLOCK_MULTIPLE, math.ceil(n_voxels / BLOCK_MULTIPLE) * BLOCK_MULTIPLE))

    def _tensor(self, array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.dtype, device=self.device)

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
        inner_cv = self._inner_cv(len(groups))
        if len(groups) == 1:
            designs, responses, keys = split_one_stimulus(designs, responses, self.outer_chunks, self.chunk_gap)
            groups = stimulus_groups(keys)
        n_voxels = responses[0].shape[1]
        voxel_groups = [n_voxels] if voxel_groups is None else [int(n) for n in voxel_groups]
        if sum(voxel_groups) != n_voxels:
            raise ValueError(f"voxel_groups add up to {sum(voxel_groups)}, the responses have {n_voxels} voxels")
        n_train = sum(len(x) for x in designs) - max(sum(len(designs[run]) for run in group) for group in groups)
        fit = self._fit_score_dual if self._form(n_train, designs[0].shape[1]) == "dual" else self._fit_score
        with _tf32(self.tf32), torch.no_grad():
            return fit(designs, responses, groups, keep_predictions, progress, voxel_groups, inner_cv, folds)

    def _form(self, n_rows, n_features):
        """The form given to the estimator, or the one :func:`shape_form` picks; another solver than the
        eigendecomposition ridge has only the primal form."""
        if self.form != "auto":
            return self.form
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
        solver = SOLVERS[self.solver](self.alphas, self.alpha_score, self.dtype, self.device)
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
            train_runs, group_rows = _training_layout(designs, groups, test_group)
            x_train = torch.cat([x_runs[run] for run in train_runs])
            result.forms.append("primal")
            gram = x_train.double().T @ x_train.double()
            inner = []
            for rows in inner_cv.validation_sets(group_rows, len(x_train)):
                rows = torch.as_tensor(rows, device=self.device)
                x_val = x_train[rows]
                inner.append((rows, x_val, solver.scorer(gram - x_val.double().T @ x_val.double(), x_val)))
            outer = solver.predictor(gram, x_runs[test_group[0]])
            block = self.block_size(len(x_train), x_train.shape[1], max(len(rows) for rows, _, _ in inner),
                                    len(designs[test_group[0]]), n_voxels)

            def training_block(voxels, train_runs=train_runs, x_train=x_train):
                y_train = torch.cat([self._columns(responses[run], voxels) for run in train_runs])
                return y_train, x_train.T @ y_train

            padded = n_voxels + BLOCK_MULTIPLE * math.ceil(n_voxels / block)
            scores = torch.zeros((len(solver.candidates), padded), dtype=self.dtype, device=self.device)
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
                    padded_choice = torch.zeros(cross.shape[1], dtype=torch.long, device=self.device)
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
        """The dual form (:class:`_Deletion`): one eigendecomposition of the kernel of all scans; every split's
        held-out predictions by deleting its held-out scans from that fit. Validation scores in a first pass over
        the voxel blocks, test predictions at the chosen alphas in a second."""
        alphas = torch.tensor(self.alphas, dtype=self.dtype, device=self.device)
        starts = np.cumsum([0] + [len(x) for x in designs])
        run_rows = [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:])]
        n_rows, n_features = int(starts[-1]), designs[0].shape[1]
        if self.rank is None:
            # float64: the features, the kernel, its eigenvectors and eigh's workspace, before they are formed
            need = 8 * (n_rows * n_features + 3 * n_rows ** 2) + LIBRARY_OVERHEAD
            if need > self._budget():
                raise MemoryError(f"the dual form's kernel of {n_rows} scans needs {need / 2 ** 20:.0f} MiB "
                                  f"(--mem gives {self._budget() / 2 ** 20:.0f} MiB); or approximate it with "
                                  "--ridge-rank K")
        fit = _Deletion(torch.cat([self._tensor(x) for x in designs]), alphas, self.dtype, rank=self.rank)
        fit.full_hat = self._room_for_hat(fit.n_rows)
        n_voxels = responses[0].shape[1]
        result = CVResult(*(np.full((len(groups), n_voxels), np.nan, np.float32) for _ in range(4)))
        plans = []
        for fold, test_group in enumerate(groups):
            if folds is not None and fold not in folds:
                continue
            train_runs, group_rows = _training_layout(designs, groups, test_group)
            if len({len(designs[run]) for run in test_group}) > 1:
                raise ValueError("repeated runs of one stimulus must have the same number of scans")
            train_index = np.concatenate([run_rows[run] for run in train_runs])
            held = np.concatenate([run_rows[run] for run in test_group])
            inner = [(train_index[rows], np.concatenate([train_index[rows], held]))
                     for rows in inner_cv.validation_sets(group_rows, len(train_index))]
            plans.append((fold, test_group, (run_rows[test_group[0]], held), inner))
        max_group = max(len(g) for *_, inner in plans for _, g in inner)
        copied_rows = sum(len(rows) for *_, inner in plans for rows, _ in inner
                          if not isinstance(_rows(rows, "cpu"), slice))
        outer_operators = sum(len(rows) * len(held) for _, _, (rows, held), _ in plans)
        block, room = self._dual_block_size(fit, max_group, n_voxels, len(plans), copied_rows, outer_operators)
        blocks = [slice(start, min(start + block, n_voxels)) for start in range(0, n_voxels, block)]

        def all_rows(voxels):
            return torch.cat([self._columns(response, voxels) for response in responses])

        scores = {fold: torch.zeros((len(alphas), n_voxels), dtype=torch.float64, device=self.device)
                  for fold, *_ in plans}
        outers = {}
        for index, batch in enumerate(self._operator_batches(plans, room)):
            outer_deletions = [plan[2] for plan in plans] if index == 0 else []  # computed with the first batch
            flat = iter(fit.operators([deletion for *_, inner in batch for deletion in inner] + outer_deletions))
            operators = {fold: [next(flat) for _ in inner] for fold, _, _, inner in batch}
            outers.update({plan[0]: next(flat) for plan in plans} if index == 0 else {})
            splits = [(fold, op, _Split(rows, held, self.device)) for fold, _, (_, held), inner in batch
                      for (rows, _), op in zip(inner, operators[fold])]
            for voxels in blocks:
                y = all_rows(voxels)
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
            y = all_rows(voxels)
            z, outside = fit.rotate(y)
            for fold, test_group, (test_rows, held), _ in plans:
                choice = torch.zeros(y.shape[1], dtype=torch.long, device=self.device)
                choice[:voxels.stop - voxels.start] = choices[fold][voxels]
                prediction = fit.fitted(z, choice, _rows(test_rows, self.device))
                residual = fit.residual(z, outside, choice, _rows(held, self.device))
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

    def _room_for_hat(self, n_rows):
        """Whether the dual form's ``n × n`` float64 hat matrix (and two more of its size) fits in a quarter of the
        memory budget; otherwise its blocks are computed one deletion at a time."""
        return 3 * 8 * n_rows ** 2 <= self._budget() / 4

    def _budget(self):
        if self.mem:
            return self.mem
        return (0.8 if str(self.device).startswith("cuda") else 0.25) * available_memory(self.device)

    def _dual_block_size(self, fit, max_group, n_voxels, n_folds, copied_rows, outer_operators):
        """Voxels per block for the dual form: half of the budget left after the fit's eigenvectors and the
        per-alpha score arrays (the deletion operators get the other half, :meth:`_operator_batches`)."""
        itemsize = torch.finfo(self.dtype).bits // 8
        n, rank = fit.n_rows, fit.rank
        # eigenvectors (float64 and working dtype), the hat matrix and its complement while the operators are
        # formed, the outer folds' operators (kept), the per-alpha scores
        hat = n * n if fit.full_hat else n * max_group  # the hat matrix, or the blocks of one deletion
        fixed = ((itemsize + 8) * n * rank + 3 * 8 * hat + itemsize * len(self.alphas) * outer_operators
                 + 8 * len(self.alphas) * n_folds * n_voxels + LIBRARY_OVERHEAD)
        per_voxel = itemsize * (6 * n + 2 * rank + 4 * max_group + copied_rows + 64) + 8 * (n + rank)  # + the
        # float64 residual and its coordinates
        room = (self._budget() - fixed) / 4  # half left for the allocator and the float64 temporaries
        if self.voxel_chunk:
            return max(BLOCK_MULTIPLE, int(self.voxel_chunk) // BLOCK_MULTIPLE * BLOCK_MULTIPLE), room
        # half of the room: the allocator keeps freed temporaries (resident memory measured by tests/test_ridge.py)
        block = min(int(room / 2 // per_voxel), 2 * self.max_block)  # 2x the primal's: measured
        block = block // BLOCK_MULTIPLE * BLOCK_MULTIPLE
        if block < BLOCK_MULTIPLE:
            need = fixed + 2 * BLOCK_MULTIPLE * per_voxel
            raise MemoryError(f"the ridge fit (dual form) needs at least {need / 2 ** 20:.0f} MiB of working memory "
                              f"(--mem gives {self._budget() / 2 ** 20:.0f} MiB)")
        return min(block, max(BLOCK_MULTIPLE, math.ceil(n_voxels / BLOCK_MULTIPLE) * BLOCK_MULTIPLE)), room

    def _operator_batches(self, plans, room):
        """Outer folds in batches whose deletion operators fit in ``room`` bytes; every batch is one pass over
        the voxels."""
        itemsize = torch.finfo(self.dtype).bits // 8
        batches, batch, used = [], [], 0
        for plan in plans:
            size = itemsize * len(self.alphas) * sum(len(rows) * len(g) for rows, g in plan[3])
            if batch and used + size > room:
                batches.append(batch)
                batch, used = [], 0
            batch.append(plan)
            used += size
        return batches + [batch]

    def _test_block(self, voxels, outer, cross, choice, solver, responses, test_group, keep):
        """Refit on all training rows with each voxel's candidate (index ``choice``); score on the held-out
        stimulus."""
        target = torch.stack([self._columns(responses[run], voxels) for run in test_group]).mean(dim=0)
        return self._tested(voxels, outer.predict(cross, choice), target, choice, solver.candidates, keep)

    @staticmethod
    def _tested(voxels, prediction, target, choice, candidates, keep):
        width = voxels.stop - voxels.start
        return _TestedBlock(test_r=pearson_r(prediction, target).cpu().numpy()[:width],
                            test_r2=r2_score(prediction, target).cpu().numpy()[:width],
                            alpha=candidates[choice].cpu().numpy()[:width],
                            prediction=prediction.cpu().numpy()[:, :width] if keep else None,
                            target=target.cpu().numpy()[:, :width] if keep else None)
