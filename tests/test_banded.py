"""The banded ridge: the same choices and scores as himalaya's MultipleKernelRidgeCV, planted truth, bad bands."""

import warnings

import numpy as np
import pytest

from bids_encoding.ridge import BandedRidgeCV
from bids_encoding.ridge.banded import dirichlet_gammas
from bids_encoding.ridge.scoring import correlation, zscore
from bids_encoding.synthetic.regression import regression_runs

ALPHAS = np.logspace(0, 5, 6)


def himalaya_fold(x_runs, y_runs, bands, gammas, test=0):
    """himalaya's MultipleKernelRidgeCV (precomputed linear kernels, random search over the given gammas, inner
    leave-one-run-out) on every run but ``test``, float64: penalties (exp(-deltas_)) and split predictions."""
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import MultipleKernelRidgeCV
    from himalaya.scoring import correlation_score

    set_backend("numpy")
    train = [i for i in range(len(x_runs)) if i != test]
    n = len(x_runs[0])
    rows = np.arange(n * len(train))
    inner = [(rows[rows // n != k], rows[rows // n == k]) for k in range(len(train))]
    x_train = np.concatenate([x_runs[i] for i in train]).astype(np.float64)
    x_test = x_runs[test].astype(np.float64)
    model = MultipleKernelRidgeCV(kernels="precomputed", solver="random_search", cv=inner, solver_params=dict(
        n_iter=gammas, alphas=ALPHAS, score_func=correlation_score, local_alpha=True, progress_bar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.stack([x_train[:, b] @ x_train[:, b].T for b in bands]),
                  np.concatenate([y_runs[i] for i in train]).astype(np.float64))
    split = np.asarray(model.predict(np.stack([x_test[:, b] @ x_train[:, b].T for b in bands]), split=True))
    return np.exp(-np.asarray(model.deltas_)), split


# fewer features than scans (thin SVD), more (kernel eigh); a second wide space (its share through its test rows'
# projection rather than factored), the widest not first
@pytest.mark.parametrize("widths", [(30, 1, 1), (200, 1, 1), (60, 200, 1)])
def test_matches_himalaya(widths):
    pytest.importorskip("himalaya")
    from himalaya.kernel_ridge._random_search import generate_dirichlet_samples
    from himalaya.scoring import correlation_score_split, r2_score_split

    x_runs, y_runs = regression_runs(0, 3, 60, sum(widths), 300)
    edges = np.cumsum((0,) + widths)
    bands = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    gammas = dirichlet_gammas(6, 3, seed=0)
    theirs = generate_dirichlet_samples(6, 3, [0.1, 1.0], random_state=0)
    theirs[0] = 1 / 3
    np.testing.assert_allclose(gammas, theirs)
    ours = BandedRidgeCV(ALPHAS, n_iter=gammas).fit_score(x_runs, bands, y_runs, keep_predictions=True, folds=[0])
    penalties, split = himalaya_fold(x_runs, y_runs, bands, gammas)
    same = np.isclose(ours.penalties[0], penalties, rtol=1e-4).all(axis=0)
    assert same.mean() >= 0.99
    target = y_runs[0].astype(np.float64)
    assert np.abs(ours.test_r[0] - correlation(split.sum(0), target))[same].max() < 1e-4
    assert np.abs(ours.predictions[0] - split.sum(0))[:, same].max() < 1e-4
    assert np.abs(ours.split_r[:, 0] - correlation_score_split(target, split))[:, same].max() < 1e-4
    assert np.abs(ours.split_r2[:, 0] - r2_score_split(target, split))[:, same].max() < 1e-4
    np.testing.assert_allclose(ours.split_r[:, 0].sum(0), ours.test_r[0], atol=1e-5)
    assert np.isnan(ours.test_r[1:]).all() and ours.fold(0).gammas.shape == (1, 3, 300)


def test_planted_spaces():
    """Voxels A driven by space 1 only, voxels B by space 2 only: the split scores give each group its space,
    and the unused space gets a large penalty."""
    rng = np.random.default_rng(1)
    n_runs, n_scans, widths, n_voxels = 3, 80, (20, 10), 200
    x_runs = [zscore(rng.standard_normal((n_scans, sum(widths)))).astype(np.float32) for _ in range(n_runs)]
    weights = np.zeros((sum(widths), n_voxels))
    weights[:widths[0], :100] = rng.standard_normal((widths[0], 100))
    weights[widths[0]:, 100:] = rng.standard_normal((widths[1], 100))
    y_runs = [zscore(x @ weights + 2 * rng.standard_normal((n_scans, n_voxels))).astype(np.float32) for x in x_runs]
    bands = [slice(0, widths[0]), slice(widths[0], sum(widths))]
    result = BandedRidgeCV(ALPHAS, n_iter=6).fit_score(x_runs, bands, y_runs, folds=[0])
    result = result.fold(0)
    split = result.split_r.mean(axis=1)  # (spaces, voxels)
    assert (split[0, :100] > split[1, :100]).mean() >= 0.9
    assert (split[1, 100:] > split[0, 100:]).mean() >= 0.9
    penalties = np.median(result.penalties, axis=0)  # (spaces, voxels)
    assert (penalties[1, :100] > 10 * penalties[0, :100]).mean() >= 0.9
    assert (penalties[0, 100:] > 10 * penalties[1, 100:]).mean() >= 0.9
    assert BandedRidgeCV(ALPHAS, n_iter=6).record()["NumberOfIterations"] == 6


@pytest.mark.parametrize("bands, message", [
    ([slice(0, 5), slice(5, 9)], "exactly once"),
    ([slice(0, 6), slice(5, 10)], "exactly once"),
    ([slice(0, 5), slice(5, 12)], "beyond"),
    ([slice(0, 10, 2), slice(1, 10, 2)], "consecutive"),
    ([[0, 1], slice(2, 10)], "slices"),
])
def test_bad_bands(bands, message):
    x_runs, y_runs = regression_runs(0, 3, 30, 10, 64)
    with pytest.raises(ValueError, match=message):
        BandedRidgeCV(ALPHAS, n_iter=2).fit_score(x_runs, bands, y_runs)
