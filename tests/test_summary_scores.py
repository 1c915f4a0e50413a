"""Summary measures of a participant's maps, and hemispheres that mean left and right."""

import logging

import nibabel as nib
import numpy as np
import pytest

from bids_encoding.derivatives.summary import participant_hemispheres, summary_scores
from bids_encoding.errors import BadDataError
from bids_encoding.hemispheres import mirror_indices
from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.synthetic.regression import regression_runs

ALPHAS = np.logspace(0, 5, 6)


def test_top10_measure_is_zero_under_the_null_and_finds_signal():
    """Voxels are chosen on inner-validation scores, never on their own test r."""
    x_runs, y_runs = regression_runs(seed=11, n_runs=5, n_voxels=3000, signal_fraction=0.0)
    null = NestedRidgeCV(ALPHAS).fit_score(x_runs, y_runs)
    scores = summary_scores(null.test_r, null.test_r2, null.validation_score)
    assert abs(scores["mean_r_top10"]) < 0.02
    assert np.sort(null.mean_r)[-300:].mean() > 0.1  # what choosing on the test r itself would report
    x_runs, y_runs = regression_runs(seed=11, n_runs=5, n_voxels=3000, signal_fraction=0.1)
    mixed = NestedRidgeCV(ALPHAS).fit_score(x_runs, y_runs)
    scores = summary_scores(mixed.test_r, mixed.test_r2, mixed.validation_score)
    assert scores["mean_r_top10"] > 3 * scores["mean_r"] > 0
    assert scores["mean_r2_top10"] > 0


def grid_affine(x0, voxel=4.0):
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = (x0, -20.0, -20.0)
    return affine


def test_participant_hemispheres_in_a_template_space_use_the_symmetric_mask():
    affine = grid_affine(-40.0)  # x = -40 + 4 i: symmetric about i = 10
    mask = np.zeros((21, 6, 6), dtype=bool)
    mask[4:17, 1:5, 1:5] = True
    mask[17:20, 1:5, 1:5] = True  # right-only voxels (x = 28..36) with no mirror in the mask
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    r = np.where(np.argwhere(mask)[:, 0] >= 17, 1.0, 0.0)[None]
    hemispheres = participant_hemispheres(mask_img, "MNI152NLin2009cAsym")
    scores = summary_scores(r, r, r, hemispheres)
    assert scores["mean_r_left"] == 0.0 and scores["mean_r_right"] == 0.0


def test_participant_hemispheres_outside_template_spaces_are_not_available(caplog):
    mask_img = nib.Nifti1Image(np.ones((21, 6, 6), dtype=np.uint8), grid_affine(-40.0))
    with caplog.at_level(logging.WARNING):
        hemispheres = participant_hemispheres(mask_img, "T1w")
    assert hemispheres is None
    assert "space-T1w" in caplog.text
    ones = np.ones((3, 21 * 36))
    scores = summary_scores(ones, ones, ones, hemispheres)
    assert np.isnan(scores["mean_r_left"]) and np.isnan(scores["mean_r_right"])


def test_mirror_of_a_grid_not_symmetric_about_the_midline_is_refused():
    """x = -77 + 4 i: no voxel has a mirror voxel; rounding mapped 475 left voxels onto 250 mirrors."""
    with pytest.raises(BadDataError, match="not symmetric"):
        mirror_indices(grid_affine(-77.0), (40, 5, 5))
    mirror = mirror_indices(grid_affine(-78.0), (40, 5, 5))  # 2 x0 / dx = -39: symmetric
    inside = mirror >= 0
    assert np.array_equal(mirror[mirror[inside]], np.flatnonzero(inside))
