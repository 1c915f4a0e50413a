"""The torch nested ridge matches a plain numpy reference of the same procedure."""

import numpy as np
import pytest

from bids_encoding.ridge import NestedRidgeCV, leave_one_run_out


def reference_nested_ridge(x_runs, y_runs, alphas):
    """Closed-form ridge (X'X + aI)^-1 X'y, per-voxel alpha by inner leave-one-run-out."""
    def fit_predict(train, predict, alpha):
        x = np.concatenate([x_runs[i] for i in train]).astype(np.float64)
        y = np.concatenate([y_runs[i] for i in train]).astype(np.float64)
        weights = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)
        return x_runs[predict] @ weights

    def corr(a, b):
        a, b = a - a.mean(0), b - b.mean(0)
        return (a * b).sum(0) / np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))

    test_r, chosen = [], []
    for train, test in leave_one_run_out(range(len(x_runs))):
        scores = np.zeros((len(alphas), y_runs[0].shape[1]))
        for inner_train, val in leave_one_run_out(train):
            for a, alpha in enumerate(alphas):
                scores[a] += corr(fit_predict(inner_train, val, alpha), y_runs[val])
        best = scores.argmax(0)
        prediction = np.column_stack([
            fit_predict(train, test, alphas[best[v]])[:, v] for v in range(y_runs[0].shape[1])])
        test_r.append(corr(prediction, y_runs[test]))
        chosen.append(np.asarray(alphas)[best])
    return np.array(test_r), np.array(chosen)


def synthetic_runs(seed=0, n_runs=4, n_scans=60, n_features=20, n_voxels=30):
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_features, n_voxels)) * rng.uniform(0, 1, n_voxels)
    x_runs, y_runs = [], []
    for _ in range(n_runs):
        x = rng.standard_normal((n_scans, n_features))
        y = x @ weights + rng.standard_normal((n_scans, n_voxels)) * 3
        x_runs.append(((x - x.mean(0)) / x.std(0)).astype(np.float32))
        y_runs.append(((y - y.mean(0)) / y.std(0)).astype(np.float32))
    return x_runs, y_runs


def test_matches_closed_form_reference():
    x_runs, y_runs = synthetic_runs()
    alphas = np.logspace(-1, 4, 11)
    result = NestedRidgeCV(alphas, voxel_chunk=7).fit_score(x_runs, y_runs)
    test_r, chosen = reference_nested_ridge(x_runs, y_runs, alphas)
    assert np.mean(np.isclose(result.alpha, chosen, rtol=1e-6)) > 0.99
    assert np.abs(result.test_r - test_r).max() < 1e-4


def test_chunking_does_not_change_results():
    x_runs, y_runs = synthetic_runs(seed=1)
    whole = NestedRidgeCV(voxel_chunk=10_000).fit_score(x_runs, y_runs)
    chunked = NestedRidgeCV(voxel_chunk=4).fit_score(x_runs, y_runs)
    # alphas can differ only where the validation curve is flat (float32 ties), which leaves r unchanged
    assert np.mean(whole.alpha == chunked.alpha) > 0.95
    np.testing.assert_allclose(whole.test_r, chunked.test_r, atol=1e-5)


def test_signal_voxels_score_higher_than_noise_voxels():
    rng = np.random.default_rng(2)
    x_runs, y_runs = [], []
    weights = rng.standard_normal(10)
    for _ in range(4):
        x = rng.standard_normal((80, 10)).astype(np.float32)
        signal = x @ weights
        y = np.column_stack([signal + rng.standard_normal(80), rng.standard_normal(80)]).astype(np.float32)
        x_runs.append(x)
        y_runs.append(y)
    result = NestedRidgeCV().fit_score(x_runs, y_runs)
    assert result.mean_r[0] > 0.8
    assert abs(result.mean_r[1]) < 0.25


def test_needs_three_runs():
    x_runs, y_runs = synthetic_runs(n_runs=2)
    with pytest.raises(ValueError):
        NestedRidgeCV().fit_score(x_runs, y_runs)
