"""``hrf``: word features convolved with the HRF at the scan times (nilearn's ``compute_regressor``),
as Bonnasse-Gahot & Pallier."""

import numpy as np

from bids_encoding.design.base import DesignKind, unchanged


def word_response_matrix(onsets, durations, times, hrf_model="glover", oversampling=50):
    """HRF response at ``times`` to each word as a unit-amplitude event.

    ``compute_regressor`` is linear in the event amplitudes, so the
    regressor of any feature is this matrix times the feature's values:
    one call per word instead of one per word and feature dimension.

    Returns
    -------
    numpy.ndarray
        ``(n_scans, n_words)``.
    """
    from nilearn.glm.first_level import compute_regressor

    columns = [
        compute_regressor(np.array([[onset], [duration], [1.0]]), hrf_model, times,
                          oversampling=oversampling)[0][:, 0]
        for onset, duration in zip(onsets, durations)
    ]
    return np.stack(columns, axis=1)


def event_regressors(onsets, durations, values, times, hrf_model="glover", oversampling=50):
    """HRF response at ``times`` to events of amplitudes ``values`` ``(n_events, n_dims)``: one
    ``compute_regressor`` call per dimension; equal to ``word_response_matrix(...) @ values``.

    Returns
    -------
    numpy.ndarray
        ``(n_scans, n_dims)``.
    """
    from nilearn.glm.first_level import compute_regressor

    onsets, durations = np.asarray(onsets, dtype=float), np.asarray(durations, dtype=float)
    return np.stack([compute_regressor(np.vstack([onsets, durations, column]), hrf_model, times,
                                       oversampling=oversampling)[0][:, 0] for column in np.asarray(values).T], axis=1)


def hrf_word_matrix(words, times, repetition_time, settings):
    return word_response_matrix(words["onset"], words["duration"], times, settings.hrf_model, settings.oversampling)


HRF = DesignKind("hrf", hrf_word_matrix, unchanged, ("hrf_model", "oversampling"))
