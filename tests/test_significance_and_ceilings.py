"""Permutation p-values and FDR keep their nominal rate; noise ceilings recover a known SNR."""

import numpy as np
import pytest
from scipy.stats import norm

from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.ridge.ceiling import cc_max, normalized_correlation, split_half_ceiling
from bids_encoding.ridge.significance import circular_shift_r, fdr_qvalues, permutation_pvalues, voxel_pvalues


def ar1(rng, n, v, phi=0.6):
    noise = np.zeros((n, v))
    noise[0] = rng.standard_normal(v)
    for t in range(1, n):
        noise[t] = phi * noise[t - 1] + np.sqrt(1 - phi ** 2) * rng.standard_normal(v)
    return noise


def test_circular_shift_r_matches_rolled_correlation():
    rng = np.random.default_rng(0)
    prediction, target = rng.standard_normal((90, 4)), rng.standard_normal((90, 4))
    by_lag = circular_shift_r(prediction, target)
    for lag in (0, 7, 45, 89):
        expected = [np.corrcoef(np.roll(prediction[:, v], lag), target[:, v])[0, 1] for v in range(4)]
        np.testing.assert_allclose(by_lag[lag], expected, atol=1e-10)


def test_fdr_controls_null_voxels_and_finds_signal():
    """Autocorrelated data through the real ridge: no-signal voxels stay at or below the nominal rate."""
    rng = np.random.default_rng(1)
    n_runs, n_scans, n_features, n_null, n_signal = 4, 120, 10, 1500, 100
    x_runs = [ar1(rng, n_scans, n_features) for _ in range(n_runs)]
    weights = rng.standard_normal((n_features, n_signal))
    y_runs = [np.hstack([ar1(rng, n_scans, n_null), x @ weights * 0.3 + ar1(rng, n_scans, n_signal)])
              for x in x_runs]
    zscore = [((a - a.mean(0)) / a.std(0)).astype(np.float32) for a in x_runs + y_runs]
    result = NestedRidgeCV(np.logspace(0, 5, 11)).fit_score(zscore[:n_runs], zscore[n_runs:], keep_predictions=True)
    for method in ("prewhitening", "circular", "blocks"):
        p = voxel_pvalues(result.predictions, result.targets, method, n_permutations=500, seed=2)
        q = fdr_qvalues(p)
        assert (q[:n_null] <= 0.05).mean() <= 0.05
        assert (q[n_null:] <= 0.05).mean() > 0.9
        assert 0.35 < p[:n_null].mean() < 0.65  # null p-values are roughly uniform


def test_benjamini_hochberg():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    q = fdr_qvalues(p)
    assert (q <= 0.05).sum() == 2
    np.testing.assert_allclose(q[:2], [0.01, 0.04])
    assert (np.diff(q[np.argsort(p)]) >= 0).all()


def test_cc_max_recovers_the_known_snr():
    rng = np.random.default_rng(3)
    n_scans, n_voxels = 400, 300
    for n_repeats, noise_sd in ((2, 1.0), (10, 2.0), (5, 0.5)):
        signal = rng.standard_normal((n_scans, n_voxels))
        repeats = signal[None] + noise_sd * rng.standard_normal((n_repeats, n_scans, n_voxels))
        expected = np.sqrt(1 / (1 + noise_sd ** 2 / n_repeats))
        assert abs(np.median(cc_max(repeats)) - expected) < 0.03
    pure_noise = rng.standard_normal((4, n_scans, n_voxels))
    assert np.median(cc_max(pure_noise)) < 0.15


def test_normalized_correlation_of_a_perfect_model_is_one():
    rng = np.random.default_rng(4)
    signal = rng.standard_normal((2000, 50))
    repeats = signal[None] + rng.standard_normal((6, 2000, 50))
    ceiling = cc_max(repeats)
    mean = repeats.mean(0)
    r = np.array([np.corrcoef(signal[:, v], mean[:, v])[0, 1] for v in range(50)])
    np.testing.assert_allclose(normalized_correlation(r, ceiling), 1.0, atol=0.05)


def test_split_half_ceiling():
    rng = np.random.default_rng(5)
    shared = [rng.standard_normal((100, 30)) for _ in range(3)]
    participants = [[s + rng.standard_normal(s.shape) for s in shared] for _ in range(8)]
    ceiling = split_half_ceiling(participants, n_splits=5)
    expected = 1 / (1 + 1 / 4)  # r of two means of 4 noisy copies: var_s / (var_s + var_n / 4)
    assert abs(ceiling.mean() - expected) < 0.05
    noise_only = [[rng.standard_normal((100, 30)) for _ in range(3)] for _ in range(8)]
    assert abs(split_half_ceiling(noise_only).mean()) < 0.05


def test_split_half_ceiling_reads_each_run_once_and_matches_the_in_memory_definition():
    rng = np.random.default_rng(6)
    shared = [rng.standard_normal((60, 20)) for _ in range(2)]
    data = [[(s + rng.standard_normal(s.shape)).astype(np.float32) for s in shared] for _ in range(7)]
    reads = []

    def loader(participant, run):
        def load():
            reads.append((participant, run))
            return data[participant][run]
        return load

    lazy = split_half_ceiling([[loader(p, k) for k in range(2)] for p in range(7)], n_splits=4, seed=3)
    assert sorted(reads) == [(p, k) for p in range(7) for k in range(2)]
    rng = np.random.default_rng(3)  # the definition: r of the two half means, averaged over splits and runs
    expected = []
    for _ in range(4):
        order = rng.permutation(7)
        for run in range(2):
            mean_a = np.mean([data[p][run] for p in order[:3]], axis=0, dtype=np.float64)
            mean_b = np.mean([data[p][run] for p in order[3:]], axis=0, dtype=np.float64)
            expected.append([np.corrcoef(mean_a[:, v], mean_b[:, v])[0, 1] for v in range(20)])
    np.testing.assert_allclose(lazy, np.mean(expected, axis=0), atol=1e-5)


def ar_series(rng, n, v, phi):
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -phi], rng.standard_normal((n + 200, v)), axis=0)[200:]


@pytest.mark.parametrize("phi_prediction, phi_data", [(0.9, 0.9), (0.9, 0.5), (0.5, 0.5)])
def test_false_positive_rate_of_autocorrelated_series(phi_prediction, phi_data):
    """Independent AR series of 300 scans, data high-passed as the app does: at most 6% below p < .05
    (circular shifts with the smaller of two p-values gave 5.2%, 6.4% and 7.7% on such series)."""
    from bids_encoding.design import Cleaning

    rng = np.random.default_rng(3)
    predictions = [ar_series(rng, 300, 4000, phi_prediction)]
    targets = [Cleaning().apply(ar_series(rng, 300, 4000, phi_data), 2.0)]
    p = voxel_pvalues(predictions, targets)
    assert (p < 0.05).mean() <= 0.06
    assert (p < 0.01).mean() <= 0.015
    assert 0.45 < p.mean() < 0.55


def test_permutation_tail_is_never_the_smaller_of_two_pvalues():
    rng = np.random.default_rng(4)
    prediction = ar_series(rng, 200, 300, 0.9)
    target = prediction + 3 * ar_series(rng, 200, 300, 0.9)
    p = permutation_pvalues([prediction], [target], n_permutations=100, seed=1)
    by_lag = circular_shift_r(prediction, target)
    lags = np.random.default_rng(1).integers(20, 181, size=100)
    exceed = (by_lag[lags] >= by_lag[0] - 1e-12).sum(axis=0)
    empirical = (1 + exceed) / 101
    np.testing.assert_allclose(p[exceed >= 10], empirical[exceed >= 10])
    assert (exceed < 10).any()
    null = by_lag[lags]
    tail = norm.sf((by_lag[0] - null.mean(0)) / null.std(0))
    np.testing.assert_allclose(p[exceed < 10], tail[exceed < 10], rtol=1e-6)


def test_best_layer_only_pvalues_equal_those_of_the_full_run(small_dataset, tiny_model, tmp_path):
    import nibabel as nib

    from bids_encoding.cli import main

    maps = {}
    for layers in ("all", "best"):
        output_dir = tmp_path / layers
        assert main([str(small_dataset), str(output_dir), "participant", "--models", str(tiny_model),
                     "--pvalue-method", "circular", "--permutations", "20", "--pvalue-layers", layers]) == 0
        maps[layers] = {path.name: np.asarray(nib.load(path).dataobj)
                        for path in output_dir.glob("sub-*/func/*_stat-[pq]_statmap.nii.gz")}
    best = sorted(name for name in maps["best"])
    assert best and all("_layer-best_" in name for name in best)
    assert len(maps["all"]) > len(best)  # every layer has its own maps in the full run
    for name in best:
        np.testing.assert_array_equal(maps["best"][name], maps["all"][name])
