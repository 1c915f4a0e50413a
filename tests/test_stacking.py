"""Stacked regression (bids_encoding/ridge/stacking.py): the same numbers as stacking-fmri, planted truth, the
exact simplex QP against scipy, the bands' checks."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from bids_encoding.ridge import InnerCV, NestedRidgeCV, StackedResult, StackedRidgeCV
from bids_encoding.ridge.bands import check_bands
from bids_encoding.ridge.memory import Compute
from bids_encoding.ridge.scoring import correlation, zscore
from bids_encoding.ridge.stacking import simplex_weights

# stacking-fmri's per-space fits: alphas 10^-6 .. 10^9 chosen per voxel by 5-fold KFold on the validation R²
STACKING_FMRI_RIDGE = dict(alphas=[10.0 ** i for i in range(-6, 10)], inner_cv=InnerCV("chunks", n_chunks=5),
                           alpha_score="r2", compute=Compute(dtype=torch.float64))


def two_spaces(n_runs=6, n_scans=50, sizes=(4, 6), n_voxels=30, noise=2.0, seed=0):
    """Runs z-scored one by one; voxel v mixes space 1 (weight v / (n_voxels - 1)) and space 2 (the rest)."""
    rng = np.random.default_rng(seed)
    designs = [rng.standard_normal((n_scans, sum(sizes))) for _ in range(n_runs)]
    bands = [slice(0, sizes[0]), slice(sizes[0], sum(sizes))]
    weights = [rng.standard_normal((size, n_voxels)) for size in sizes]
    mix = np.linspace(0, 1, n_voxels)
    responses = [mix * (x[:, bands[0]] @ weights[0]) + (1 - mix) * (x[:, bands[1]] @ weights[1])
                 + noise * rng.standard_normal((n_scans, n_voxels)) for x in designs]
    return [zscore(x) for x in designs], bands, [zscore(y) for y in responses]


def test_same_numbers_as_stacking_fmri():
    """One outer fold (the last run held out) against ``stacking_fmri.stacking_fmri`` on the same rows.

    Its stacking folds (5 contiguous blocks of the training rows) are our 5 training runs, its 5-fold KFold
    our ``chunks`` inner CV (the block sizes divide by 5), its z-scoring of every block a no-op on runs
    z-scored one by one; its weights come from cvxopt's interior point (tolerance ~1e-7 on the objective)."""
    stacking_fmri = pytest.importorskip("stacking_fmri")
    designs, bands, responses = two_spaces()
    fold = len(designs) - 1
    result = StackedRidgeCV(NestedRidgeCV(**STACKING_FMRI_RIDGE)).fit_score(designs, bands, responses,
                                                                            folds=[fold])
    assert np.isnan(result.test_r[0]).all() and not np.isnan(result.test_r[fold]).any()
    train, test = np.concatenate(responses[:fold]), responses[fold]
    train_features = [np.concatenate([x[:, band] for x in designs[:fold]]) for band in bands]
    test_features = [designs[fold][:, band] for band in bands]
    r2s, stacked_r2, _, _, stacked_train_r2, weights = stacking_fmri.stacking_fmri(
        train, test, train_features, test_features)
    rs, stacked_r, *_ = stacking_fmri.stacking_fmri(train, test, train_features, test_features,
                                                    score_f=correlation)
    np.testing.assert_allclose(result.weights[fold], weights.T, atol=1e-4)
    np.testing.assert_allclose(result.test_r[fold], stacked_r, atol=1e-4)
    np.testing.assert_allclose(result.test_r2[fold], stacked_r2, atol=1e-4)
    np.testing.assert_allclose(result.space_r[:, fold], rs, atol=1e-6)
    np.testing.assert_allclose(result.space_r2[:, fold], r2s, atol=1e-6)
    # R² of the stacked held-out predictions: over all training rows there, averaged over runs here (the same
    # with runs of equal length z-scored one by one)
    np.testing.assert_allclose(result.validation_score[fold], stacked_train_r2, atol=1e-4)
    one = result.fold(fold)
    assert isinstance(one, StackedResult) and one.weights.shape == (1, 2, 30) and one.space_r.shape == (2, 1, 30)
    assert one.record()["Method"] == "stacked regression"


def test_planted_truth_gets_its_space():
    """Voxels driven by space 1 alone weigh space 1 ≈ 1, those driven by space 2 weigh space 2 ≈ 1; the
    weights are convex in every fold; the stacked model predicts about as well as the better space."""
    rng = np.random.default_rng(1)
    n_runs, n_scans, n_voxels = 5, 60, 40
    designs = [rng.standard_normal((n_scans, 8)) for _ in range(n_runs)]
    bands = [slice(0, 3), slice(3, 8)]
    driven = np.repeat([0, 1], n_voxels // 2)
    weights = rng.standard_normal((8, n_voxels))
    weights[3:, driven == 0] = 0
    weights[:3, driven == 1] = 0
    responses = [zscore(x @ weights + 0.5 * rng.standard_normal((n_scans, n_voxels))) for x in designs]
    ridge = NestedRidgeCV(alphas=np.logspace(-2, 4, 7))
    result = StackedRidgeCV(ridge).fit_score([zscore(x) for x in designs], bands, responses, keep_predictions=True)
    assert result.weights.shape == (n_runs, 2, n_voxels)
    assert (result.weights >= 0).all() and np.allclose(result.weights.sum(axis=1), 1, atol=1e-6)
    own = result.weights.mean(axis=0)[driven, np.arange(n_voxels)]
    assert own.min() > 0.9, own.min()
    np.testing.assert_array_equal(result.alpha, np.take_along_axis(
        result.space_alpha, result.weights.argmax(axis=1)[None], axis=0)[0])
    best = result.space_r.max(axis=0).mean(axis=0)
    assert (result.mean_r > best - 0.02).all()
    assert len(result.predictions) == n_runs and result.predictions[0].shape == (n_scans, n_voxels)
    np.testing.assert_allclose(correlation(result.predictions[2], result.targets[2]), result.test_r[2], atol=1e-5)
    # the split scores: the spaces' weighted parts add up to the stacked r, and each voxel's own space has the most
    np.testing.assert_allclose(result.split_r.sum(axis=0), result.test_r, atol=1e-5)
    assert (result.split_r2.mean(axis=1).argmax(axis=0) == driven).mean() >= 0.95


def test_simplex_weights_against_scipy():
    """The exact solver against SLSQP on random problems of 2 to 5 spaces, rank-deficient ones included."""
    rng = np.random.default_rng(2)
    for n_spaces in range(2, 6):
        residuals = rng.standard_normal((50, 12, n_spaces)) + rng.standard_normal((50, 12, 1))
        residuals[:10, :, -1] = residuals[:10, :, 0]  # two spaces with the same residuals
        residuals[10:15, :2] = 0  # rank 2 or less
        gram = np.einsum("vns,vnt->vst", residuals, residuals) / 12
        ours = simplex_weights(gram)
        assert (ours >= 0).all() and np.allclose(ours.sum(axis=1), 1)
        for p, w in zip(gram, ours):
            reference = minimize(lambda x, p=p: x @ p @ x, np.full(n_spaces, 1 / n_spaces),
                                 jac=lambda x, p=p: 2 * p @ x, method="SLSQP", bounds=[(0, None)] * n_spaces,
                                 constraints={"type": "eq", "fun": lambda x: x.sum() - 1}, options={"ftol": 1e-14})
            assert w @ p @ w <= reference.fun + 1e-10
            if np.linalg.eigvalsh(p)[0] > 1e-6 * np.linalg.eigvalsh(p)[-1]:  # a unique minimiser
                np.testing.assert_allclose(w, reference.x, atol=1e-5)


def test_simplex_weights_known_cases():
    np.testing.assert_allclose(simplex_weights(np.diag([1.0, 3.0])), [0.75, 0.25])
    np.testing.assert_allclose(simplex_weights(np.array([[1.0, 1.0], [1.0, 4.0]])), [1.0, 0.0])
    np.testing.assert_allclose(simplex_weights(np.zeros((3, 4, 4))).sum(axis=-1), 1)


@pytest.mark.parametrize("bands", [[], [slice(0, 3), slice(2, 5)], [slice(0, 0)], [slice(0, 9)],
                                   [slice(0, 4, 2)], [(0, 3)], slice(0, 3), [slice(-2, None)]])
def test_bad_bands(bands):
    with pytest.raises(ValueError):
        check_bands(bands, 5)
    designs, _, responses = two_spaces(n_runs=3, sizes=(2, 3), n_voxels=4)
    with pytest.raises(ValueError):
        StackedRidgeCV().fit_score(designs, bands, responses)


def test_settings_or_ridge():
    assert StackedRidgeCV(alpha_score="r2").ridge.alpha_score == "r2"
    with pytest.raises(ValueError):
        StackedRidgeCV(NestedRidgeCV(), alpha_score="r2")
    assert check_bands([slice(None, 2), slice(2, None)], 5) == [slice(0, 2), slice(2, 5)]
