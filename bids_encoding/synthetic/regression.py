"""Synthetic regression data for the ridge engine's tests and benchmark (planted linear responses)."""

import numpy as np

from bids_encoding.ridge.scoring import zscore


def regression_runs(seed=0, n_runs=4, n_scans=80, n_features=40, n_voxels=300, signal_fraction=0.3):
    """Runs of correlated features and responses, a fraction of voxels driven by the features.

    Returns
    -------
    x_runs, y_runs : list of float32 arrays, z-scored per run
        ``(n_scans, n_features)`` and ``(n_scans, n_voxels)``.
    """
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    weights = rng.standard_normal((n_features, n_voxels)) / np.sqrt(n_features)
    weights *= rng.random(n_voxels) < signal_fraction
    x_runs = [zscore(rng.standard_normal((n_scans, n_features)) @ mixing).astype(np.float32) for _ in range(n_runs)]
    y_runs = [zscore(x @ weights + rng.standard_normal((n_scans, n_voxels))).astype(np.float32) for x in x_runs]
    return x_runs, y_runs
