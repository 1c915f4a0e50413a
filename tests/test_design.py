"""HRF design: the per-word response matrix equals nilearn's compute_regressor on the features."""

import numpy as np
from nilearn.glm.first_level import compute_regressor

from bids_encoding.design import Cleaning, DesignSettings, frame_times, word_response_matrix
from bids_encoding.ridge import NestedRidgeCV


def test_response_matrix_equals_compute_regressor():
    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(2, 180, 120))
    durations = rng.uniform(0.1, 0.5, 120)
    features = rng.standard_normal((120, 5))
    times = frame_times(100, 2.0)
    response = word_response_matrix(onsets, durations, times)
    for column in range(5):
        expected = compute_regressor(np.vstack([onsets, durations, features[:, column]]), "glover", times)[0][:, 0]
        np.testing.assert_allclose(response @ features[:, column], expected, atol=1e-10)


def test_trimming_and_zscore():
    rng = np.random.default_rng(1)
    onsets = np.sort(rng.uniform(2, 180, 200))
    response = word_response_matrix(onsets, np.full(200, 0.3), frame_times(100, 2.0))
    design = DesignSettings(trim_start=5, trim_end=7).regressors(rng.standard_normal((200, 3)), response, 2.0)
    assert design.shape == (88, 3)
    np.testing.assert_allclose(design.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(design.std(0, ddof=1), 1, atol=1e-5)


def test_frame_times_are_mid_volume():
    np.testing.assert_allclose(frame_times(3, 2.0), [1.0, 3.0, 5.0])


def huth_lanczosinterp2d(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    """The Huth lab's reference implementation (ridge_utils/interpdata.py), transcribed."""
    def lanczosfun(cutoff, t, window):
        t = t * cutoff
        with np.errstate(divide="ignore", invalid="ignore"):
            val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi ** 2 * t ** 2)
        val[t == 0] = 1.0
        val[np.abs(t) > window] = 0.0
        return val

    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    sincmat = np.zeros((len(newtime), len(oldtime)))
    for index in range(len(newtime)):
        sincmat[index] = lanczosfun(cutoff, newtime[index] - oldtime, window)
    return sincmat @ data


def test_lanczos_matches_the_huth_lab_implementation():
    from bids_encoding.design.lanczos import lanczos_matrix

    rng = np.random.default_rng(2)
    word_times = np.sort(rng.uniform(0, 200, 450))
    scan_times = frame_times(100, 2.0)
    data = rng.standard_normal((450, 6))
    np.testing.assert_allclose(lanczos_matrix(word_times, scan_times, 2.0) @ data,
                               huth_lanczosinterp2d(data, word_times, scan_times), atol=1e-10)


def test_fir_delays_and_lanczos_design():
    from bids_encoding.design.lanczos import fir_delays

    design = np.arange(12, dtype=float).reshape(6, 2)
    delayed = fir_delays(design, (1, 2))
    assert delayed.shape == (6, 4)
    np.testing.assert_array_equal(delayed[:, :2], np.vstack([np.zeros((1, 2)), design[:5]]))
    np.testing.assert_array_equal(delayed[:, 2:], np.vstack([np.zeros((2, 2)), design[:4]]))
    import pandas as pd

    words = pd.DataFrame({"onset": np.arange(2, 180, 0.4), "duration": 0.3})
    settings = DesignSettings(kind="lanczos-fir", trim_start=3, trim_end=2)
    matrix = settings.word_matrix(words, 95, 2.0)
    regressors = settings.regressors(np.random.default_rng(0).standard_normal((len(words), 5)), matrix, 2.0)
    assert regressors.shape == (90, 20)


def test_lanczos_fir_design_is_zero_mean_after_delays_and_trimming():
    """Z-scoring comes last: zero-filled delays and trimming would otherwise leave a mean the ridge cannot fit."""
    import pandas as pd

    rng = np.random.default_rng(3)
    words = pd.DataFrame({"onset": np.arange(2, 180, 0.4), "duration": 0.3})
    features = rng.standard_normal((len(words), 4)) + 3.0  # features with a mean, as hidden states have
    settings = DesignSettings(kind="lanczos-fir", trim_start=10, trim_end=5)
    design = settings.regressors(features, settings.word_matrix(words, 95, 2.0), 2.0, Cleaning(high_pass=None))
    np.testing.assert_allclose(design.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(design.std(axis=0, ddof=1), 1, atol=1e-4)


def test_design_is_cleaned_as_the_bold():
    """Features drift slowly; the BOLD loses its slow part to the high-pass, and so must the design."""
    rng = np.random.default_rng(4)
    tr, n_scans, cleaning, settings = 2.0, 300, Cleaning(), DesignSettings(trim_start=0, trim_end=0)
    weights = rng.standard_normal((6, 40))
    designs, uncleaned, responses = [], [], []
    for _ in range(5):
        onsets = np.sort(rng.uniform(0, tr * n_scans - 10, 1200))
        drift = 3 * np.sin(2 * np.pi * onsets[:, None] / rng.uniform(300, 900, 6) + rng.uniform(0, 6, 6))
        features = rng.standard_normal((1200, 6)) + drift
        matrix = word_response_matrix(onsets, np.full(1200, 0.3), frame_times(n_scans, tr))
        bold = (matrix @ features) @ weights
        bold = bold / bold.std(0) + 2 * rng.standard_normal(bold.shape)
        responses.append(cleaning.apply(bold, tr))
        designs.append(settings.regressors(features, matrix, tr, cleaning))
        raw = matrix @ features
        uncleaned.append(((raw - raw.mean(0)) / raw.std(0)).astype(np.float32))
    alphas = np.logspace(-1, 4, 11)
    cleaned_r = NestedRidgeCV(alphas).fit_score(designs, responses).mean_r.mean()
    uncleaned_r = NestedRidgeCV(alphas).fit_score(uncleaned, responses).mean_r.mean()
    assert cleaned_r > uncleaned_r + 0.03, (cleaned_r, uncleaned_r)


def test_designs_come_from_one_registry():
    """A design is one registered DesignKind: the settings dispatch to it and record only its own parameters."""
    import pytest

    from bids_encoding.design import DESIGNS

    assert set(DESIGNS) == {"hrf", "lanczos-fir"}
    assert "fir_delays" not in DesignSettings(kind="hrf").record()
    assert "hrf_model" not in DesignSettings(kind="lanczos-fir").record()
    with pytest.raises(ValueError, match="hrf, lanczos-fir"):
        DesignSettings(kind="gamma")
