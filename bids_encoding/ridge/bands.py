"""The feature spaces of a joint design: each space's columns (a band), checked once for both joint solvers."""

import numpy as np


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
