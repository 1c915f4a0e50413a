"""Group level of joint models (--joint-model): per space, t maps of the unique and split R² and the left-right
asymmetry of the unique R²; the tables; the scaling of the language model's unique R² over model size; the
report's section. Participant outputs are written directly (as tests/test_group.py does), with planted regions."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import validator_errors
from test_group import AFFINE, GRID, SETTINGS, write_participant_outputs
from test_reports import assert_numbers_match_their_sources

from bids_encoding.cli import main

SPACE = "MNI152NLin2009cAsym"
N_PARTICIPANTS = 4
JOINT = {"jointsmall": ("m0", 1.24e8), "jointlarge": ("m3", 1.5e9)}  # joint model -> language model, parameters
UNIQUE_SLOPE = 0.01  # planted growth of the language model's unique R² per decade of parameters


def _regions():
    """The planted regions: the language model's (left, x < 0, z = 1..2) and the word rate's (both sides, z = 4)."""
    x = nib.affines.apply_affine(AFFINE, np.indices(GRID).reshape(3, -1).T)[:, 0].reshape(GRID)
    z = np.indices(GRID)[2]
    return (x < 0) & (z >= 1) & (z <= 2), z == 4


def _write_joint_models(root, seed=1):
    """Two joint models (language model + word rate) per participant, with their maps, sidecars and rows."""
    rng = np.random.default_rng(seed)
    lm_region, rate_region = _regions()
    for s in range(1, N_PARTICIPANTS + 1):
        func = root / f"sub-{s:02d}" / "func"
        stem = f"sub-{s:02d}_task-story_space-{SPACE}"
        rows = []
        for joint, (lm, n_params) in JOINT.items():
            lm_unique = lm_region * (0.05 + UNIQUE_SLOPE * (np.log10(n_params) - 8)) + rng.normal(0, 0.005, GRID)
            rate_unique = rate_region * 0.04 + rng.normal(0, 0.005, GRID)
            sidecar = {**SETTINGS, "Model": {"Id": f"joint:org/{lm}+wordrate", "Label": joint, "Source": "hub",
                                             "Type": "gpt2", "NumberOfParameters": n_params},
                       "JointModel": {"Label": joint, "Solver": "banded", "Spaces": [
                           {"Label": lm, "Id": f"org/{lm}", "Source": "hub", "Layer": [3, 3, 3]},
                           {"Label": "wordrate", "Id": "wordrate", "Source": "baseline"}]}}
            maps = {("r", None): np.full(GRID, 0.3), ("r2", None): np.full(GRID, 0.1) + lm_unique + rate_unique}
            for space, unique in ((lm, lm_unique), ("wordrate", rate_unique)):
                maps[("uniquer2", space)] = unique
                maps[("splitr2", space)] = unique + 0.01
                maps[("splitr", space)] = 2 * unique + 0.02
            for (stat, desc), values in maps.items():
                name = f"{stem}_model-{joint}{f'_desc-{desc}' if desc else ''}_stat-{stat}_statmap"
                nib.Nifti1Image(values.astype(np.float32), AFFINE).to_filename(func / f"{name}.nii.gz")
                (func / f"{name}.json").write_text(json.dumps(sidecar))
            rows.append({"model": joint, "layer": "joint", "mean_r": 0.3})
            rows += [{"model": joint, "layer": space, "unique_r2": float(np.mean(maps[("uniquer2", space)]))}
                     for space in (lm, "wordrate")]
        table = func / f"{stem}_scores.tsv"
        pd.concat([pd.read_csv(table, sep="\t"), pd.DataFrame(rows)]).to_csv(table, sep="\t", index=False)
    return root


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    root = tmp_path_factory.mktemp("groupjoint")
    write_participant_outputs(root, n_participants=N_PARTICIPANTS, params=[1.24e8, 1.5e9])
    _write_joint_models(root)
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "200"]) == 0
    from bids_encoding.reports.group import write_group_report

    with pytest.MonkeyPatch.context() as patch:  # the written sidecars lack what the methods text reads
        patch.setattr("bids_encoding.reports.group._participant_sidecars", lambda output_dir: [])
        write_group_report(root)
    return root


def _group(root, name):
    return root / "group" / f"task-story_space-{SPACE}_{name}"


def _image(path):
    return np.asarray(nib.load(path).dataobj)


def test_unique_r2_t_maps_are_positive_in_each_space_s_planted_region(grouped):
    lm_region, rate_region = _regions()
    mask = _image(_group(grouped, "desc-symmetric_mask.nii.gz")) > 0
    for joint, (lm, _) in JOINT.items():
        lm_t = _image(_group(grouped, f"model-{joint}_desc-{lm}unique_stat-t_statmap.nii.gz"))
        rate_t = _image(_group(grouped, f"model-{joint}_desc-wordrateunique_stat-t_statmap.nii.gz"))
        assert (lm_t[lm_region & mask] > 3).all() and (rate_t[rate_region & mask] > 3).all()
        assert np.median(np.abs(lm_t[~lm_region & mask])) < 3
        assert _group(grouped, f"model-{joint}_desc-{lm}uniquefdr05_stat-t_statmap.nii.gz").is_file()
        assert _group(grouped, f"model-{joint}_desc-wordratesplit_stat-t_statmap.nii.gz").is_file()
        # the language model's unique R² is left-lateralized; the word rate's is not
        lm_lr = _image(_group(grouped, f"model-{joint}_desc-{lm}uniqueLminusR_stat-t_statmap.nii.gz"))
        assert (lm_lr[lm_region & mask] > 3).all()
        lr_path = _group(grouped, f"model-{joint}_desc-wordrateLminusR_stat-uniquer2_statmap.nii.gz")
        assert np.abs(_image(lr_path)).max() < 0.03
        sidecar = json.loads(lr_path.with_name(lr_path.name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["Space"] == "wordrate" and "unique R²" in sidecar["Description"]
    t_sidecar = json.loads(_group(grouped, "model-jointsmall_desc-m0unique_stat-t_statmap.json").read_text())
    assert "unique R²" in t_sidecar["Description"] and t_sidecar["DegreesOfFreedom"] == N_PARTICIPANTS - 1


def test_joint_tables_hold_the_participants_means(grouped):
    scores = pd.read_csv(_group(grouped, "jointscores.tsv"), sep="\t")
    assert len(scores) == N_PARTICIPANTS * 2 * 2
    mask = _image(_group(grouped, "desc-symmetric_mask.nii.gz")) > 0
    for row in scores.itertuples():
        stem = grouped / row.participant / "func" / f"{row.participant}_task-story_space-{SPACE}_model-{row.model}"
        for stat, column in (("uniquer2", "unique_r2"), ("splitr", "split_r"), ("splitr2", "split_r2")):
            values = _image(f"{stem}_desc-{row.space}_stat-{stat}_statmap.nii.gz")
            assert getattr(row, column) == pytest.approx(float(values[mask].mean()), abs=1e-6)
    language = scores[scores["language"]]
    assert set(language["space"]) == {"m0", "m3"} and set(scores[~scores["language"]]["space"]) == {"wordrate"}
    assert (language["l_minus_r"] > 0.01).all()
    summary = pd.read_csv(_group(grouped, "jointmodels.tsv"), sep="\t")
    for row in summary.itertuples():
        chosen = scores[(scores["model"] == row.model) & (scores["space"] == row.space)]
        assert row.unique_r2 == pytest.approx(chosen["unique_r2"].mean())
        assert row.n_participants == N_PARTICIPANTS
    rois = pd.read_csv(_group(grouped, "jointrois.tsv"), sep="\t")
    assert {"participant", "model", "space", "roi", "left", "right", "l_minus_r"} <= set(rois.columns)


def test_scaling_of_the_language_model_s_unique_r2(grouped):
    fits = pd.read_csv(_group(grouped, "jointfits.tsv"), sep="\t")
    group = fits[(fits["level"] == "group") & (fits["measure"] == "unique_r2")].iloc[0]
    # the planted slope, diluted over the mask by the language model's region
    mask = _image(_group(grouped, "desc-symmetric_mask.nii.gz")) > 0
    planted = UNIQUE_SLOPE * (_regions()[0] & mask).sum() / mask.sum()
    assert group["slope"] == pytest.approx(planted, rel=0.15)
    assert group["lowlevel"] == "wordrate" and group["models"] == "jointlarge+jointsmall"
    assert (fits["level"] == "participant").sum() == 2 * N_PARTICIPANTS  # unique and split R²
    sidecar = json.loads(_group(grouped, "jointfits.json").read_text())
    assert sidecar["JointModels"] == {"wordrate": ["jointlarge", "jointsmall"]}
    assert (grouped / "group" / "figures" / f"task-story_space-{SPACE}_desc-jointscaling_plot.svg").is_file()


def test_group_joint_outputs_are_valid_and_reported(grouped):
    # the validator accepts the output with group/ (the only errors: the test's raw dataset folder inside it)
    assert [error for error in validator_errors(grouped) if not error[2].startswith("/bids/")] == []
    report = grouped / "group.html"
    text = report.read_text()
    assert 'id="joint-story"' in text and "Joint models" in text
    assert "jointsmall" in text and "wordrate" in text and "unique R²" in text
    assert assert_numbers_match_their_sources(report, grouped) > 20
    assert text.count("data-file=\"group/task-story_space-MNI152NLin2009cAsym_jointmodels.tsv\"") >= 8


def test_joint_models_fitted_otherwise_are_named(tmp_path, capsys):
    root = _write_joint_models(write_participant_outputs(tmp_path, n_participants=N_PARTICIPANTS, params=[1.24e8]))
    path = root / "sub-02" / "func" / f"sub-02_task-story_space-{SPACE}_model-jointsmall_stat-r_statmap.json"
    sidecar = json.loads(path.read_text())
    sidecar["JointModel"]["Solver"] = "stacking"
    path.write_text(json.dumps(sidecar))
    assert main([str(root / "bids"), str(root), "group"]) == 65
    assert "joint model jointsmall" in capsys.readouterr().err


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory, tiny_model):
    """The participant level's joint model on the demo generator's data (word rate and the tiny model planted in
    their own regions), then the group level (the scaling over sizes is tested above, on written outputs: a
    second language model here would double the slowest part)."""
    from bids_encoding.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("jointe2e")
    generate_dataset(root, str(tiny_model), n_participants=3, n_runs=3, seed=3, lowlevel_amplitude=1.0)
    out = root / "out"
    assert main([str(root / "bids"), str(out), "participant", "--models", str(tiny_model), "--joint-model",
                 f"small={tiny_model}+wordrate", "--joint-candidates", "3", "--pvalue-method", "none", "--device",
                 "cpu", "--alphas", "10", "100", "1000", "10000", "--layers", "-1"]) == 0
    assert main([str(root / "bids"), str(out), "group", "--group-bootstraps", "50"]) == 0
    return root, out


@pytest.mark.slow
def test_end_to_end_unique_r2_t_maps_find_the_planted_regions(end_to_end, tiny_model):
    from bids_encoding.features.models import model_label

    root, out = end_to_end
    truth = root / "ground_truth"
    lm_region = _image(truth / "planted_labels.nii.gz") == 1
    rate_region = _image(truth / "planted_lowlevel.nii.gz") == 1
    prefix = out / "group" / "task-story_space-orig"
    mask = _image(f"{prefix}_desc-symmetric_mask.nii.gz") > 0
    label = model_label(str(tiny_model))
    lm_t = _image(f"{prefix}_model-small_desc-{label}unique_stat-t_statmap.nii.gz")
    rate_t = _image(f"{prefix}_model-small_desc-wordrateunique_stat-t_statmap.nii.gz")
    only_lm, only_rate = lm_region & ~rate_region & mask, rate_region & ~lm_region & mask
    assert only_lm.sum() >= 10 and only_rate.sum() >= 10
    assert (lm_t[only_lm] > 0).mean() >= 0.9 and (rate_t[only_rate] > 0).mean() >= 0.9
    assert np.median(lm_t[only_lm]) > np.median(lm_t[only_rate])  # each space's t is highest in its own region
    assert np.median(rate_t[only_rate]) > np.median(rate_t[only_lm])
    scores = pd.read_csv(f"{prefix}_jointscores.tsv", sep="\t")
    assert len(scores) == 3 * 2 and set(scores[scores["language"]]["space"]) == {label}
    for row in scores.itertuples():  # the participants' maps' means over the group's mask
        values = _image(out / row.participant / "func" / f"{row.participant}_task-story_space-orig_model-small_"
                        f"desc-{row.space}_stat-uniquer2_statmap.nii.gz")
        assert row.unique_r2 == pytest.approx(float(values[mask].mean()), abs=1e-6)
    assert pd.read_csv(f"{prefix}_jointfits.tsv", sep="\t").empty  # one language model size
    assert not list((out / "group").glob("*LminusR_stat-uniquer2*"))  # not a template space
    assert [error for error in validator_errors(out) if error[2].startswith("/group")] == []
