"""Which functional brain network each pattern's voxel map resembles.

Each pattern's weight map is compared with every network of an atlas (Yeo/Schaefer 7 or 17 networks,
or a user's atlas): the spatial correlation of the map with the network's indicator, and the Dice
overlap of the map's strongest voxels with the network. The null of the best match comes from random
permutations of the map's voxels (they keep its values, not its spatial smoothness, so they are lenient
with smooth maps); a pattern is assigned to its best network when that match beats the null at
Benjamini-Hochberg FDR ``alpha`` over the patterns.
"""

import numpy as np
import pandas as pd

from bids_encoding.ridge.significance import fdr_qvalues

TOP_FRACTION = 0.1  # the map's strongest voxels for the Dice overlap


def _zscore(maps):
    maps = np.asarray(maps, dtype=np.float64)
    maps = maps - maps.mean(axis=-1, keepdims=True)
    std = maps.std(axis=-1, keepdims=True)
    return np.divide(maps, std, out=np.zeros_like(maps), where=std > 0)


def network_correlations(maps, indicators):
    """Pearson correlation of each map (rows of ``maps``, ``(n_maps, n_voxels)``) with each network
    indicator (``(n_networks, n_voxels)``): ``(n_maps, n_networks)``."""
    return _zscore(maps) @ _zscore(indicators).T / np.shape(maps)[-1]


def dice(maps, indicators, fraction=TOP_FRACTION):
    """Dice overlap of each map's strongest ``fraction`` of voxels (by value) with each network."""
    maps = np.asarray(maps)
    count = max(1, int(round(fraction * maps.shape[1])))
    top = np.zeros(maps.shape, dtype=bool)
    np.put_along_axis(top, np.argsort(-maps, axis=1)[:, :count], True, axis=1)
    indicators = np.asarray(indicators, dtype=bool)
    overlap = top.astype(float) @ indicators.T.astype(float)
    return 2 * overlap / (count + indicators.sum(axis=1)[None, :])


def match_networks(maps, labels, names, n_permutations=1000, alpha=0.05, seed=0):
    """Match each pattern map to its best network, with a permutation null and FDR over patterns.

    Parameters
    ----------
    maps : array (n_patterns, n_voxels)
        Pattern weight maps on the voxels of ``labels``.
    labels : array (n_voxels,)
        Network of each voxel (0: none).
    names : dict
        ``{label: network name}``.
    n_permutations : int
    alpha : float
        FDR level.

    Returns
    -------
    pandas.DataFrame
        One row per pattern: best network, its correlation and Dice, p, q, and whether it is matched.
    """
    networks = sorted(names)
    indicators = np.stack([np.asarray(labels) == label for label in networks])
    observed = network_correlations(maps, indicators)
    best = observed.argmax(axis=1)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(len(maps))
    standardized = _zscore(maps)
    for _ in range(n_permutations):
        shuffled = standardized[:, rng.permutation(standardized.shape[1])]
        exceed += network_correlations(shuffled, indicators).max(axis=1) >= observed.max(axis=1)
    pvalues = (exceed + 1) / (n_permutations + 1)
    qvalues = fdr_qvalues(pvalues)
    overlaps = dice(maps, indicators)
    rows = np.arange(len(maps))
    return pd.DataFrame({"pattern": rows, "network": [names[networks[k]] for k in best],
                         "correlation": observed[rows, best], "dice": overlaps[rows, best],
                         "p": pvalues, "q": qvalues, "matched": qvalues <= alpha})
