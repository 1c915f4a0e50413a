"""The feature spaces of a joint design: each space's columns (a band), checked once for both joint solvers, and
each space's share of a banded ridge's prediction."""

import numpy as np
import torch


def check_bands(bands, n_features, max_spaces=None):
    """The bands as ``slice(start, stop)``; ``ValueError`` unless they are slices of consecutive columns (at most
    ``max_spaces``) that cover each of the ``n_features`` columns exactly once."""
    if not isinstance(bands, (list, tuple)) or not bands or (max_spaces and len(bands) > max_spaces):
        raise ValueError(f"bands must be a list of 1 to {max_spaces or 'any number of'} slices, one per feature "
                         "space")
    count, checked = np.zeros(n_features, dtype=int), []
    for band in bands:
        if not isinstance(band, slice) or band.step not in (None, 1):
            raise ValueError(f"bands must be slices of consecutive columns, not {band!r}")
        if any(bound is not None and not 0 <= bound <= n_features for bound in (band.start, band.stop)):
            raise ValueError(f"band {band!r} selects columns beyond the design's {n_features}")
        start, stop, _ = band.indices(n_features)
        if stop <= start:
            raise ValueError(f"band {band!r} selects no column")
        count[start:stop] += 1
        checked.append(slice(start, stop))
    if (count != 1).any():
        raise ValueError(f"the bands must cover each of the design's {n_features} columns exactly once: "
                         f"{int((count == 0).sum())} columns in no band, {int((count > 1).sum())} in several")
    return checked


class SpaceShares:
    """Each space's share ``γ_i X_i[test] X_iᵀ w`` of a fold's held-out prediction, from the dual weights in
    eigen-coordinates ``w = F c`` (float64): ``γ_i X_i[test] (X_iᵀ F) c`` for every space but the widest, whose
    share is the joint prediction minus theirs (``Σ_i γ_i K_i w = K_γ w``), so the widest space's features are never
    multiplied per voxel."""

    def __init__(self, x, bands, gamma, eigenvectors):
        self.x, self.bands, self.gamma = x, bands, gamma
        self.widest = int(np.argmax([band.stop - band.start for band in bands]))
        self.projections = {i: x[:, band].T @ eigenvectors for i, band in enumerate(bands) if i != self.widest}

    def __call__(self, test_rows, coefficients, joint):
        """The shares ``(n_spaces, n_test, n_voxels)`` (float64) of the test rows, given ``c`` ``(rank, n_voxels)``
        and the joint prediction."""
        rank, n_test = coefficients.shape[0], len(test_rows)
        rows = torch.as_tensor(test_rows, device=coefficients.device)
        shares = [None] * len(self.bands)
        for i, projection in self.projections.items():
            test = self.x[rows][:, self.bands[i]]
            if test.shape[1] * (rank + n_test) < n_test * rank:
                shares[i] = self.gamma[i] * (test @ (projection @ coefficients))
            else:
                shares[i] = self.gamma[i] * ((test @ projection) @ coefficients)
        shares[self.widest] = joint.double() - sum(share for share in shares if share is not None)
        return torch.stack(shares)
