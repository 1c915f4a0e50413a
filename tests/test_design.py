"""HRF design: the per-word response matrix equals nilearn's compute_regressor on the features."""

import numpy as np
from nilearn.glm.first_level import compute_regressor

from bids_encoding.design import DesignSettings, frame_times, hrf_design, word_response_matrix


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
    design = hrf_design(rng.standard_normal((200, 3)), response, DesignSettings(trim_start=5, trim_end=7))
    assert design.shape == (88, 3)
    np.testing.assert_allclose(design.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(design.std(0), 1, atol=1e-5)


def test_frame_times_are_mid_volume():
    np.testing.assert_allclose(frame_times(3, 2.0), [1.0, 3.0, 5.0])
