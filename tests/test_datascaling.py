"""Training-data scaling (--data-scaling): planted data give a score that rises with the training data, at the
participant level (each outer fold refitted on random subsets) and at the group level (a positive slope against
log10(training scans) whose CI excludes 0)."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import bidsignore_patterns_used, validator_errors

from bids_encoding.cli import main
from bids_encoding.participant.datascaling import DataScaling


def test_default_sizes_double_up_to_all():
    assert DataScaling().sizes_for(8) == [1, 2, 4, 8]
    assert DataScaling().sizes_for(6) == [1, 2, 4, 6]
    assert DataScaling(sizes=(1, 3, 9)).sizes_for(6) == [1, 3]


@pytest.fixture(scope="module")
def scaled(tmp_path_factory, tiny_model):
    from bids_encoding.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("datascaling")
    generate_dataset(root, str(tiny_model), n_participants=5, n_runs=6, amplitude_left=0.3, n_components=16)
    labels = nib.load(root / "ground_truth" / "planted_labels.nii.gz")
    mask = root / "planted_mask.nii.gz"  # the planted spheres only: the scores are those of the planted voxels
    nib.Nifti1Image((np.asarray(labels.dataobj) > 0).astype(np.uint8), labels.affine).to_filename(mask)
    out = root / "out"
    assert main([str(root / "bids"), str(out), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--mask", str(mask), "--pvalue-method", "none", "--design", "lanczos-fir", "--data-scaling",
                 "--data-scaling-draws", "2"]) == 0
    assert main([str(root / "bids"), str(out), "group", "--group-bootstraps", "500"]) == 0
    return root, out


def test_each_fold_is_refitted_on_nested_training_subsets(scaled):
    _, out = scaled
    path = out / "sub-01" / "func" / "sub-01_task-story_space-orig_model-tinygpt2_datascaling.tsv"
    table = pd.read_csv(path, sep="\t")
    assert sorted(table["fold"].unique()) == list(range(6))
    sizes = table.groupby("n_stimuli")["draw"].nunique().to_dict()
    assert sizes == {1: 2, 2: 2, 4: 2, 5: 1}  # every training stimulus once: one draw
    assert (table.groupby("n_stimuli")["n_scans"].mean().diff().dropna() > 0).all()
    curve = table.groupby("n_stimuli")["mean_r"].mean()
    assert (curve.diff().dropna() > 0).all()  # deterministic (seeded); equal sizes would give a flat curve
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["DataScaling"]["Draws"] == 2 and sidecar["Layer"] in (0, 1, 2)


def test_the_group_fits_the_score_against_log_training_scans(scaled, tmp_path):
    _, out = scaled
    fits = pd.read_csv(out / "group" / "task-story_space-orig_datafits.tsv", sep="\t")
    group = fits[(fits["level"] == "group") & (fits["measure"] == "mean_r")].iloc[0]
    assert group["model"] == "tinygpt2" and group["n_participants"] == 5 and group["n_sizes"] == 4
    assert group["slope"] > 0 and group["ci_low"] > 0
    scores = pd.read_csv(out / "group" / "task-story_space-orig_datascaling.tsv", sep="\t")
    assert len(scores) == 20 and np.isclose(scores["log10_scans"], np.log10(scores["n_scans"])).all()
    assert validator_errors(out) == []
    assert {"*_datascaling.tsv", "*_datascaling.json"} <= bidsignore_patterns_used(out, tmp_path)
