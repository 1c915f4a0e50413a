"""The ridge's dual form: every held-out prediction of the nested cross-validation from one fit on all scans,
by deleting the held-out scans from it (:class:`Deletion`)."""

import numpy as np
import torch

from bids_encoding.ridge.kernels import SCORES_OF_PREDICTIONS, r_centered


def rows_of(index, device):
    """Rows as a slice when they are contiguous (a view, no copy), else as an index tensor."""
    index = np.asarray(index)
    if len(index) and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return torch.as_tensor(index, device=device)


def _block(matrix, rows, columns):
    """``matrix[rows][:, columns]`` for rows and columns given by :func:`rows_of` (a view when both are slices)."""
    return matrix[rows][:, columns] if isinstance(rows, torch.Tensor) else matrix[rows, columns]


class Split:
    """One inner split of the dual form: its validation rows, predicted with the outer test rows ``held`` also
    deleted (``G`` = the validation rows, then ``held``)."""

    def __init__(self, rows, held, device):
        self.rows, self.held, self.n_rows = rows_of(rows, device), rows_of(held, device), len(rows)

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
        return r_centered(prediction - prediction.mean(dim=0, keepdim=True), y_val, total)




def _randomized_kernel(x, rank, seed, oversampling=10, power_iterations=4):
    """The ``rank`` leading eigenpairs of ``X Xᵀ`` from a randomized range finder (Halko et al. 2011:
    ``torch.svd_lowrank`` with ``power_iterations`` power iterations), without forming the kernel: ridge on the
    best rank-``rank`` approximation of the features, an approximation of the exact fit."""
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        left, singular, _ = torch.svd_lowrank(x, q=min(rank + oversampling, min(x.shape)), niter=power_iterations)
    return singular[:rank] ** 2, left[:, :rank]


class Deletion:
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
                rest = rows_of(rest, device) if rest else None
                rest_factor = torch.linalg.cholesky(block(rest, rest)) if rest is not None else None
                for index in indices:
                    rows = rows_of(deletions[index][0], device)
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


