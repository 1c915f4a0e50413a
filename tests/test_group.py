"""Group level: planted scaling slopes and lateralization are recovered; errors are clear."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import templateflow_home

from bids_encoding.cli import main
from bids_encoding.group.scaling import confidence_band, multiple_fit, scaling_fit

GRID = (15, 6, 5)
AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])
AFFINE[:3, 3] = (-28.0, 0.0, 0.0)  # voxel 7 is x = 0
PARAMS = [1.24e8, 3.5e8, 7.7e8, 1.5e9, 6.7e9, 1.3e10]
SETTINGS = {"Features": {"pooling": "last"}, "Design": {"kind": "hrf"}, "BOLD": {"HighPassHz": 0.0078125},
            "Ridge": {"Alphas": [1.0], "AlphaChoice": "per voxel", "OuterCV": "x", "InnerCV": {"Scheme": "loro"},
                      "Score": "r"}, "SoftwareVersions": {"bids_encoding": "0.1.0"}}


def write_participant_outputs(root, n_participants=12, slope=0.017, lr_growth=0.004, seed=0,
                              space="MNI152NLin2009cAsym", reliable_slice=None, params=PARAMS):
    """Synthetic participant results: r = 0.1 + slope log10(N) (+ L-R growth on the left) + noise.

    With ``reliable_slice`` (a z index), that slice gets a high noise ceiling (CC_max map) and r + 0.1.
    """
    rng = np.random.default_rng(seed)
    x = nib.affines.apply_affine(AFFINE, np.indices(GRID).reshape(3, -1).T)[:, 0].reshape(GRID)
    for s in range(1, n_participants + 1):
        func = root / f"sub-{s:02d}" / "func"
        func.mkdir(parents=True)
        stem = f"sub-{s:02d}_task-story_space-{space}"
        nib.Nifti1Image(np.ones(GRID, np.uint8), AFFINE).to_filename(func / f"{stem}_desc-brain_mask.nii.gz")
        offset = rng.normal(0, 0.02)
        boost = np.zeros(GRID)
        if reliable_slice is not None:
            boost[..., reliable_slice] = 0.1
            ceiling = np.where(boost > 0, 0.8, rng.uniform(0, 0.3, GRID))
            nib.Nifti1Image(ceiling.astype(np.float32), AFFINE).to_filename(func / f"{stem}_stat-ccmax_statmap.nii.gz")
        rows = []
        for k, n_params in enumerate(params):
            decades = np.log10(n_params) - 8
            r_map = 0.1 + offset + slope * decades + lr_growth * decades * (x < 0) + boost
            r_map = r_map + rng.normal(0, 0.01, GRID) + rng.normal(0, 0.004)
            name = f"{stem}_model-m{k}_layer-best_stat-r_statmap"
            nib.Nifti1Image(r_map.astype(np.float32), AFFINE).to_filename(func / f"{name}.nii.gz")
            (func / f"{name}.json").write_text(json.dumps({**SETTINGS, "Model": {
                "Id": f"org/m{k}", "Label": f"m{k}", "Source": "hub", "Untrained": False, "Type": "gpt2",
                "NumberOfParameters": n_params, "NumberOfLayers": 12 + 2 * k, "HiddenSize": 768 + 128 * k}}))
            rows.append({"model": f"m{k}", "layer": "best", "mean_r": float(r_map.mean())})
        pd.DataFrame(rows).to_csv(func / f"{stem}_scores.tsv", sep="\t", index=False)
    (root / "bids").mkdir()
    (root / "bids" / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0"}))
    return root


# The columns docs/outputs.md and docs/group.md name for each table.
DOCUMENTED_COLUMNS = {
    "scores": {"participant", "model", "mean_r", "mean_r_reliable", "mean_r_top10", "left", "right", "l_minus_r"},
    "fits": {"measure", "predictor", "family", "level", "slope", "intercept", "ci_low", "ci_high", "p"},
    "multifits": {"measure", "term", "coefficient", "ci_low", "ci_high"},
    "rois": {"participant", "model", "roi", "left", "right", "l_minus_r"},
    "roifits": {"roi", "r_lminusr_log10_params", "slope", "mean_l_minus_r"},
}
PARTICIPANT_COLUMNS = {"model", "layer", "n_params", "n_params_no_head", "n_params_non_embedding", "mean_r",
                       "mean_r_left", "mean_r_right", "mean_r_top10", "mean_r2", "mean_r2_top10"}


def assert_every_table_loads(root, participant_tables=True):
    """Every TSV under ``root`` loads with pandas and has the columns its docs name."""
    tables = sorted(root.rglob("*.tsv"))
    assert tables
    for path in tables:
        if "/work/" in str(path):
            continue
        frame = pd.read_csv(path, sep="\t")
        suffix = path.name[:-len(".tsv")].rsplit("_", 1)[1]
        expected = PARTICIPANT_COLUMNS if path.name.startswith("sub-") and participant_tables else \
            DOCUMENTED_COLUMNS.get(suffix, set())
        assert len(frame.columns) > 0 and expected <= set(frame.columns), path.name


def group_fit(fits, measure):
    row = fits[(fits["level"] == "group") & (fits["measure"] == measure) & (fits["predictor"] == "log10_params")
               & (fits["family"] == "all")]
    return row.iloc[0]


@pytest.mark.parametrize("slope, growth", [(0.017, 0.004), (0.0, 0.0)])
def test_planted_slopes_are_recovered(tmp_path, capsys, slope, growth):
    root = write_participant_outputs(tmp_path, slope=slope, lr_growth=growth, reliable_slice=0)
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "1000"]) == 0
    assert "not a TemplateFlow template" not in capsys.readouterr().err
    fits = pd.read_csv(root / "group" / "task-story_space-MNI152NLin2009cAsym_fits.tsv", sep="\t")
    for measure, planted in (("mean_r", slope + growth / 2), ("l_minus_r", growth), ("right", slope),
                             ("left", slope + growth), ("l_minus_r_reliable", growth),
                             ("mean_r_reliable", slope + growth / 2)):
        fit = group_fit(fits, measure)
        assert fit["ci_low"] <= planted <= fit["ci_high"], measure
        if planted:
            assert fit["ci_low"] > 0 and fit["p"] < 0.01
    scores = pd.read_csv(root / "group" / "task-story_space-MNI152NLin2009cAsym_scores.tsv", sep="\t")
    assert set(scores["participant"]) == {f"sub-{s:02d}" for s in range(1, 13)}
    assert (root / "group" / "task-story_space-MNI152NLin2009cAsym_stat-slope_statmap.nii.gz").is_file()
    assert (root / "group" / "figures" / "task-story_space-MNI152NLin2009cAsym_desc-scaling_plot.svg").is_file()


def test_reliable_voxels_from_the_noise_ceiling(tmp_path):
    """Without inter-subject correlation, the reliable voxels are the top of the participants' CC_max."""
    root = write_participant_outputs(tmp_path, n_participants=3, reliable_slice=0)
    assert main([str(root / "bids"), str(root), "group", "--reliable-fraction", "0.2",
                 "--group-bootstraps", "50"]) == 0
    prefix = root / "group" / "task-story_space-MNI152NLin2009cAsym"
    reliable = np.asarray(nib.load(f"{prefix}_desc-reliable_mask.nii.gz").dataobj) > 0
    symmetric = np.asarray(nib.load(f"{prefix}_desc-symmetric_mask.nii.gz").dataobj) > 0
    expected = np.zeros(GRID, bool)
    expected[..., 0] = True
    np.testing.assert_array_equal(reliable, symmetric & expected)
    assert "CC_max" in json.loads(open(f"{prefix}_desc-reliable_mask.json").read())["ReliabilitySource"]
    scores = pd.read_csv(f"{prefix}_scores.tsv", sep="\t")
    assert np.allclose(scores["mean_r_reliable"] - scores["mean_r"], 0.08, atol=0.01)  # 0.1 on 20% of voxels


def test_bad_reliable_fraction_is_a_usage_error(tmp_path, capsys):
    root = write_participant_outputs(tmp_path, n_participants=2)
    assert main([str(root / "bids"), str(root), "group", "--reliable-fraction", "1.5"]) == 64
    assert "--reliable-fraction" in capsys.readouterr().err


def test_one_model_gives_lateralization_without_scaling(tmp_path):
    root = write_participant_outputs(tmp_path, n_participants=4, params=PARAMS[-1:], lr_growth=0.01)
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "50"]) == 0
    prefix = root / "group" / "task-story_space-MNI152NLin2009cAsym"
    assert pd.read_csv(f"{prefix}_fits.tsv", sep="\t").empty
    assert pd.read_csv(f"{prefix}_roifits.tsv", sep="\t").empty
    assert_every_table_loads(root / "group")
    scores = pd.read_csv(f"{prefix}_scores.tsv", sep="\t")
    assert (scores["l_minus_r"] > 0).all()
    assert not list((root / "group" / "figures").glob("*desc-scaling_plot.svg"))


def test_symmetric_subset_takes_voxels_reliable_on_either_side():
    from bids_encoding.hemispheres import symmetric_mask, symmetric_subset

    mask, left, mirror = symmetric_mask([np.ones(GRID, bool)], AFFINE)
    reliable = np.zeros(GRID, bool)
    reliable[2, 1, 1] = True  # left voxel (x = -20)
    reliable[14, 3, 3] = True  # right voxel (x = 28), mirror of (0, 3, 3)
    subset = symmetric_subset(reliable, left, mirror)
    assert set(zip(*np.nonzero(subset))) == {(2, 1, 1), (0, 3, 3)}


def test_rerun_leaves_no_files_of_a_model_that_is_gone(tmp_path):
    root = write_participant_outputs(tmp_path, n_participants=3)
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20"]) == 0
    gone = root / "group" / "task-story_space-MNI152NLin2009cAsym_model-m5_stat-t_statmap.nii.gz"
    assert gone.is_file()
    for path in root.glob("sub-*/func/*_model-m5_*"):
        path.unlink()
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20"]) == 0
    assert not gone.exists() and not list((root / "group").rglob("*model-m5*"))
    assert (root / "group" / "task-story_space-MNI152NLin2009cAsym_model-m4_stat-t_statmap.nii.gz").is_file()


def test_scaling_fit_on_a_table():
    rng = np.random.default_rng(1)
    rows = [{"participant": p, "model": f"m{k}", "log10_params": np.log10(n),
             "r": 0.2 + 0.02 * np.log10(n) + rng.normal(0, 0.005)} for p in range(10) for k, n in enumerate(PARAMS)]
    group = scaling_fit(pd.DataFrame(rows), "r", n_bootstraps=500)[-1]
    assert group["ci_low"] <= 0.02 <= group["ci_high"]
    assert group["r_across_models"] > 0.95


def test_slope_confidence_interval_is_calibrated():
    """Over 200 simulated groups of 12 participants, the 95% CI covers the planted slope 93-98% of the time
    (a plain percentile bootstrap covers about 91%)."""
    x = np.log10(PARAMS)
    covered = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        offsets, slopes = rng.normal(0, 0.02, 12), 0.017 + rng.normal(0, 0.003, 12)
        table = pd.DataFrame([{"participant": p, "model": f"m{k}", "log10_params": x[k],
                               "r": 0.1 + offsets[p] + slopes[p] * x[k] + rng.normal(0, 0.004)}
                              for p in range(12) for k in range(len(x))])
        group = scaling_fit(table, "r", n_bootstraps=400, seed=seed)[-1]
        covered.append(group["ci_low"] <= 0.017 <= group["ci_high"])
    assert 0.93 <= np.mean(covered) <= 0.98


def test_multiple_regression_recovers_planted_coefficients():
    rng = np.random.default_rng(3)
    models = pd.DataFrame({"model": [f"m{k}" for k in range(10)], "log10_params": rng.uniform(8, 10.5, 10),
                           "n_layers": rng.integers(6, 48, 10), "hidden_size": rng.integers(256, 4096, 10)})
    planted = {"intercept": 0.05, "log10_params": 0.02, "n_layers": 0.001, "hidden_size": -5e-6}
    offsets = rng.normal(0, 0.01, 15)
    table = pd.DataFrame([{"participant": p, **model, "r": offsets[p] + rng.normal(0, 0.003) + planted["intercept"]
                           + sum(planted[k] * model[k] for k in ("log10_params", "n_layers", "hidden_size"))}
                          for p in range(15) for model in models.to_dict("records")])
    rows = {row["term"]: row for row in multiple_fit(table, "r", n_bootstraps=500)}
    for term in ("log10_params", "n_layers", "hidden_size"):
        assert rows[term]["ci_low"] <= planted[term] <= rows[term]["ci_high"], term
    assert rows["log10_params"]["ci_low"] > 0 and rows["n_layers"]["ci_low"] > 0 and rows["hidden_size"]["ci_high"] < 0
    assert multiple_fit(table[table["model"].isin(["m0", "m1", "m2", "m3", "m4"])], "r") == []  # too few models


def test_confidence_band_holds_the_planted_line():
    rng = np.random.default_rng(2)
    offsets = rng.normal(0, 0.02, 10)
    rows = [{"participant": p, "model": f"m{k}", "log10_params": np.log10(n),
             "r": 0.2 + offsets[p] + 0.02 * np.log10(n) + rng.normal(0, 0.005)}
            for p in range(10) for k, n in enumerate(PARAMS)]
    table = pd.DataFrame(rows)
    grid = np.linspace(np.log10(PARAMS[0]), np.log10(PARAMS[-1]), 25)
    low, high = confidence_band(table, "r", grid, n_bootstraps=500)
    group = scaling_fit(table, "r", n_bootstraps=500)[-1]
    fitted = group["intercept"] + group["slope"] * grid
    assert np.all(low <= fitted) and np.all(fitted <= high)
    truth = 0.2 + offsets.mean() + 0.02 * grid  # the line of these participants' population
    assert np.mean((low <= truth) & (truth <= high)) > 0.9
    standard_error = 0.02 / np.sqrt(10)  # of the participants' mean offset
    assert np.all(high - low < 2 * 1.96 * standard_error * 1.5)


def _write_atlas(folder, pattern, left_label, right_label):
    atlas = np.zeros(GRID, np.int16)
    atlas[:7], atlas[8:] = left_label, right_label  # voxel 7 is the midline
    paths = list(folder.glob(pattern))
    assert paths
    for path in paths:
        nib.Nifti1Image(atlas, AFFINE).to_filename(path)


def test_schaefer_parcels_through_templateflow(tmp_path, monkeypatch):
    folder = templateflow_home(tmp_path, monkeypatch)
    root = write_participant_outputs(tmp_path / "out", n_participants=3)
    _write_atlas(folder, "*atlas-Schaefer2018_desc-400Parcels7Networks_dseg.nii.gz", 1, 201)
    assert main([str(root / "bids"), str(root), "group", "--atlas", "Schaefer2018", "--group-bootstraps", "100"]) == 0
    prefix = root / "group" / "task-story_space-MNI152NLin2009cAsym_atlas-Schaefer2018"
    parcels = pd.read_csv(f"{prefix}_parcels.tsv", sep="\t")
    assert set(parcels["roi"]) == {"7Networks_LH_Vis_1", "7Networks_RH_Vis_1"}  # from TemplateFlow's label table
    left = parcels[parcels["roi"] == "7Networks_LH_Vis_1"]["mean_r"].mean()
    right = parcels[parcels["roi"] == "7Networks_RH_Vis_1"]["mean_r"].mean()
    assert left > right
    rois = pd.read_csv(f"{prefix}_rois.tsv", sep="\t")
    assert set(rois["roi"]) == {"7Networks_Vis"}
    fits = pd.read_csv(f"{prefix}_roifits.tsv", sep="\t")
    assert fits.loc[fits["roi"] == "7Networks_Vis", "r_lminusr_log10_params"].iloc[0] > 0.8  # planted L-R growth


def test_harvard_oxford_labels_from_another_template(tmp_path, monkeypatch):
    """TemplateFlow keeps Harvard-Oxford labels in MNI152NLin6Asym only, indexed from 0 (image labels from 1)."""
    folder = templateflow_home(tmp_path, monkeypatch)
    assert not list(folder.glob("*HOCPAL*.tsv"))
    root = write_participant_outputs(tmp_path / "out", n_participants=3)
    _write_atlas(folder, "*_res-02_atlas-HOCPAL_desc-th25_dseg.nii.gz", 1, 2)
    assert main([str(root / "bids"), str(root), "group", "--atlas", "HarvardOxford", "--group-bootstraps", "50"]) == 0
    prefix = root / "group" / "task-story_space-MNI152NLin2009cAsym_atlas-HarvardOxford"
    parcels = pd.read_csv(f"{prefix}_parcels.tsv", sep="\t")
    assert set(parcels["roi"]) == {"Left Frontal Pole", "Right Frontal Pole"}
    rois = pd.read_csv(f"{prefix}_rois.tsv", sep="\t")
    assert set(rois["roi"]) == {"FrontalPole"}
    assert (rois["n_voxels_left"] > 0).all() and (rois["left"] > rois["right"]).mean() > 0.5


def test_missing_template_says_how_to_prefetch(tmp_path, monkeypatch, capsys):
    templateflow_home(tmp_path, monkeypatch)  # the skeleton's images are empty: nothing to use without internet
    root = write_participant_outputs(tmp_path / "out", n_participants=2, space="MNI152NLin2009cAsym")
    code = main([str(root / "bids"), str(root), "group", "--atlas", "HarvardOxford", "--group-bootstraps", "50"])
    err = capsys.readouterr().err
    assert code == 66
    assert "prefetch" in err and "TEMPLATEFLOW_HOME" in err, err
    assert not (root / "group").exists()


def test_roi_file(tmp_path):
    root = write_participant_outputs(tmp_path, n_participants=3)
    roi_file = tmp_path / "rois.tsv"
    pd.DataFrame({"name": ["lateral"], "x": [-20], "y": [8], "z": [8]}).to_csv(roi_file, sep="\t", index=False)
    assert main([str(root / "bids"), str(root), "group", "--roi-file", str(roi_file), "--group-bootstraps", "50"]) == 0
    rois = pd.read_csv(root / "group" / "task-story_space-MNI152NLin2009cAsym_rois.tsv", sep="\t")
    assert set(rois["roi"]) == {"lateral"}
    assert (rois["l_minus_r"] > 0).mean() > 0.5  # planted L-R growth


def test_group_without_participant_results(tmp_path, capsys):
    (tmp_path / "bids").mkdir()
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "group"])
    assert code == 66
    assert "participant' first" in capsys.readouterr().err


@pytest.mark.parametrize("section, value, named", [
    ("Design", {"kind": "lanczos-fir"}, "Design"),
    ("SoftwareVersions", {"bids_encoding": "0.1.0", "transformers": "9.9.9"}, "transformers"),
])
def test_inconsistent_settings_are_named(tmp_path, capsys, section, value, named):
    root = write_participant_outputs(tmp_path, n_participants=2)
    sidecar = next((root / "sub-02" / "func").glob("*_model-m0_layer-best_stat-r_statmap.json"))
    content = json.loads(sidecar.read_text())
    content[section] = value
    sidecar.write_text(json.dumps(content))
    assert main([str(root / "bids"), str(root), "group"]) == 65
    err = capsys.readouterr().err
    assert named in err and "sub-02" in err
    assert not (root / "group").exists()


def test_different_grids_are_named(tmp_path, capsys):
    root = write_participant_outputs(tmp_path, n_participants=2)
    mask = next((root / "sub-02" / "func").glob("*_desc-brain_mask.nii.gz"))
    nib.Nifti1Image(np.ones(GRID, np.uint8), AFFINE * np.diag([1, 1, 1.5, 1])).to_filename(mask)
    assert main([str(root / "bids"), str(root), "group"]) == 65
    assert "different grids" in capsys.readouterr().err


def test_demo_participant_then_group(tmp_path, tiny_model, capsys):
    """Two trained models and an untrained baseline on the demo dataset, then the group level."""
    from conftest import build_tiny_gpt2

    from bids_encoding.synthetic import generate_dataset

    bigger = build_tiny_gpt2(tmp_path / "bigger", n_embd=64, n_layer=3, seed=7)
    generate_dataset(tmp_path, str(tiny_model))
    out = tmp_path / "derivatives"
    models = [str(tiny_model), str(bigger), f"untrained:{tiny_model}"]
    assert main([str(tmp_path / "bids"), str(out), "participant", "--models", *models, "--device", "cpu",
                 "--pvalue-method", "none"]) == 0  # the group level reads no p-values
    capsys.readouterr()
    assert main([str(tmp_path / "bids"), str(out), "group", "--group-bootstraps", "200"]) == 0
    assert "space-orig is not a TemplateFlow template" in capsys.readouterr().err
    group = out / "group"
    prefix = "task-story_space-orig"
    from bids_encoding.features.models import model_label

    label = model_label(str(tiny_model))
    for name in ("scores.tsv", "fits.tsv", "multifits.tsv", "rois.tsv", "roifits.tsv", "stat-isc_statmap.nii.gz",
                 "desc-reliable_mask.nii.gz", "desc-symmetric_mask.nii.gz", "stat-slope_statmap.nii.gz"):
        assert (group / f"{prefix}_{name}").is_file(), name
        assert (group / f"{prefix}_{name.split('.')[0]}.json").is_file(), name
    for name in (f"model-{label}_stat-t_statmap", f"model-{label}_desc-fdr05_stat-t_statmap",
                 f"model-{label}_desc-LminusR_stat-r_statmap", f"model-{label}_desc-LminusR_stat-t_statmap",
                 f"model-{label}_desc-LminusRfdr05_stat-t_statmap", "desc-slope_stat-t_statmap",
                 "desc-slopefdr05_stat-t_statmap"):
        assert (group / f"{prefix}_{name}.nii.gz").is_file()
    figures = {path.name for path in (group / "figures").glob("*.svg")}
    for name in ("desc-scaling_plot", "desc-lateralization_plot", "desc-roiasymmetry_plot"):
        assert f"{prefix}_{name}.svg" in figures, name
    scores = pd.read_csv(group / f"{prefix}_scores.tsv", sep="\t")
    planted = scores[scores["model"] == label]
    assert (planted["l_minus_r_reliable"] > 0).all() and planted["l_minus_r"].mean() > 0
    assert planted["mean_r_reliable"].mean() > planted["mean_r"].mean()
    assert scores[scores["model"] == f"untrained{label}"]["baseline"].all()
    assert_every_table_loads(out)


def test_group_minus_mirror_map_holds_left_voxels_only(tmp_path):
    root = write_participant_outputs(tmp_path, n_participants=3, params=PARAMS[:2])
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20"]) == 0
    path = root / "group" / "task-story_space-MNI152NLin2009cAsym_model-m1_desc-LminusR_stat-r_statmap.nii.gz"
    difference = np.asarray(nib.load(path).dataobj)
    x = nib.affines.apply_affine(AFFINE, np.indices(GRID).reshape(3, -1).T)[:, 0].reshape(GRID)
    assert np.all(difference[x >= 0] == 0)
    assert np.all(difference[x < 0] != 0)


def test_slope_map_pairs_each_participant_with_their_own_maps(tmp_path):
    """One participant lacks a model: the voxel-wise slopes still use every participant's own maps."""
    root = write_participant_outputs(tmp_path, n_participants=4, params=PARAMS[:3])
    for path in root.glob("sub-01/func/*_model-m1_*"):
        path.unlink()
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20"]) == 0
    x = np.log10(PARAMS[:3])
    x = x - x.mean()
    expected = []
    for s in (2, 3, 4):
        maps = [np.asarray(nib.load(root / f"sub-{s:02d}" / "func" / f"sub-{s:02d}_task-story_space-"
                                    f"MNI152NLin2009cAsym_model-m{k}_layer-best_stat-r_statmap.nii.gz").dataobj)
                for k in range(3)]
        expected.append(sum(c * m for c, m in zip(x, maps)) / (x ** 2).sum())
    slope = np.asarray(nib.load(root / "group" / "task-story_space-MNI152NLin2009cAsym_stat-slope_statmap.nii.gz")
                       .dataobj)
    symmetric = np.asarray(nib.load(root / "group" / "task-story_space-MNI152NLin2009cAsym_desc-symmetric_mask.nii.gz")
                           .dataobj) > 0
    np.testing.assert_allclose(slope, np.mean(expected, axis=0) * symmetric, atol=1e-5)


def test_group_refuses_a_grid_not_symmetric_about_the_midline(tmp_path, capsys):
    root = write_participant_outputs(tmp_path, n_participants=2, params=PARAMS[:2])
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.0  # x = -27 + 4 i: no voxel mirrors another
    for path in root.glob("sub-*/func/*.nii.gz"):
        image = nib.load(path)
        nib.Nifti1Image(np.asarray(image.dataobj), shifted).to_filename(path)
    assert main([str(root / "bids"), str(root), "group"]) == 65
    error = capsys.readouterr().err
    assert "not symmetric" in error and "Traceback" not in error
    assert not (root / "group").exists()


def test_inter_subject_correlation_uses_the_participants_recorded_cleaning(tmp_path, tiny_model, capsys):
    """The group command's own --high-pass does not change the ISC: the participant sidecars' settings do."""
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=2, n_runs=3)
    out = tmp_path / "derivatives"
    assert main([str(tmp_path / "bids"), str(out), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--high-pass", "0.02", "--pvalue-method", "none", "--layers", "1"]) == 0
    isc = out / "group" / "task-story_space-orig_stat-isc_statmap"
    maps = []
    for high_pass in ("0.02", "0.0078125"):
        assert main([str(tmp_path / "bids"), str(out), "group", "--group-bootstraps", "20",
                     "--high-pass", high_pass]) == 0
        maps.append(np.asarray(nib.load(f"{isc}.nii.gz").dataobj))
        assert json.loads(open(f"{isc}.json").read())["Cleaning"]["HighPassHz"] == 0.02
    np.testing.assert_array_equal(maps[0], maps[1])
    assert np.abs(maps[0]).max() > 0


def test_isc_from_the_participant_level_cache_equals_reading_the_bold(tmp_path, tiny_model):
    """--isc-cache: the group's ISC read from the participants' cached cleaned BOLD equals the one read from the
    BOLD; a cache that is not what the group would read (other trimming) is not used."""
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=3, n_runs=3)
    out = tmp_path / "derivatives"
    assert main([str(tmp_path / "bids"), str(out), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--pvalue-method", "none", "--layers", "1", "--isc-cache"]) == 0
    assert len(list(out.glob("sub-*/cache/*_bold.npy"))) == 9
    isc = out / "group" / "task-story_space-orig_stat-isc_statmap"
    maps, sources = [], []
    for break_cache in (False, True):
        if break_cache:
            for record in out.glob("sub-01/cache/*_desc-isc_bold.json"):
                content = json.loads(record.read_text())
                record.write_text(json.dumps({**content, "TrimScans": [9, 9]}))
        assert main([str(tmp_path / "bids"), str(out), "group", "--group-bootstraps", "20"]) == 0
        maps.append(np.asarray(nib.load(f"{isc}.nii.gz").dataobj))
        sources.append(json.loads(open(f"{isc}.json").read())["ReadFrom"])
    assert set(sources[0].values()) == {"cache"}
    assert sources[1]["sub-01"] == "BOLD" and sources[1]["sub-02"] == "cache"
    assert np.abs(maps[0]).max() > 0.1
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-6)
    for record in out.glob("sub-02/cache/*_desc-isc_bold.json"):
        record.write_text("{not json")
    assert main([str(tmp_path / "bids"), str(out), "group", "--group-bootstraps", "20"]) == 0
    assert json.loads(open(f"{isc}.json").read())["ReadFrom"]["sub-02"] == "BOLD"
    for cache in out.glob("sub-*/cache"):
        shutil.rmtree(cache)
    assert main([str(tmp_path / "bids"), str(out), "group", "--group-bootstraps", "20"]) == 0
    assert set(json.loads(open(f"{isc}.json").read())["ReadFrom"].values()) == {"BOLD"}
    np.testing.assert_allclose(np.asarray(nib.load(f"{isc}.nii.gz").dataobj), maps[0], atol=1e-6)


def test_isc_pairs_only_participants_whose_audio_starts_at_the_same_scan(tmp_path, caplog):
    """Narratives: one story, different onsets per participant; their BOLD is not aligned, so no ISC pairs them."""
    from types import SimpleNamespace

    from bids_encoding.design.cleaning import Cleaning
    from bids_encoding.group.isc import inter_subject_correlation

    def result(subject, origin):
        runs = [{"Bold": f"sub-{subject}/func/sub-{subject}_task-pieman_bold.nii.gz", "RepetitionTime": 1.5,
                 "NumberOfScans": 300, "Stimulus": "pieman", "Words": {"Origin": origin}}]
        return SimpleNamespace(subject=subject, sidecars={"map": {"Runs": runs, "Cleaning": Cleaning().record(),
                                                                  "Design": {}}})

    mask = np.ones((2, 2, 2), bool)
    with caplog.at_level("WARNING"):
        assert inter_subject_correlation(tmp_path, [result("001", 0.0), result("002", 4.5)], mask, np.eye(4)) \
            == (None, None)
    assert "is not in" not in caplog.text  # stopped before looking for the BOLD: nobody to pair
    with caplog.at_level("WARNING"):
        inter_subject_correlation(tmp_path, [result("001", 0.0), result("002", 0.0)], mask, np.eye(4))
    assert "is not in" in caplog.text  # paired: it went on to read their BOLD


def test_language_roi_coverage_of_a_mask():
    """A mask that drops the left temporal pole is reported: the voxels the science is about would go unscored."""
    from bids_encoding.group.rois import LANGUAGE_ROIS, language_coverage, sphere_masks

    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-80.0, -112.0, -72.0)
    shape = (41, 49, 41)
    full = np.ones(shape, bool)
    assert all(value == 1.0 for value in language_coverage(nib.Nifti1Image(full.astype(np.uint8), affine)).values())
    cut = full & ~sphere_masks(affine, shape, {"TP": LANGUAGE_ROIS["TP"]})["TP_L"]
    coverage = language_coverage(nib.Nifti1Image(cut.astype(np.uint8), affine))
    assert coverage["TP_L"] == 0.0 and coverage["TP_R"] == 1.0 and coverage["pSTS_L"] == 1.0


def test_group_mask_rule_union_with_a_minimum_count(tmp_path):
    """sub-01's own mask lacks one voxel pair (and its r there is junk): the default intersection drops the
    pair; with --group-mask-threshold 0.75 (3 of 4) the pair stays, means use the 3 participants who have
    it, and t maps keep to the voxels everyone has."""
    root = write_participant_outputs(tmp_path, n_participants=4, params=PARAMS[:2])
    func = root / "sub-01" / "func"
    stem = "sub-01_task-story_space-MNI152NLin2009cAsym"
    mask = np.ones(GRID, np.uint8)
    mask[2, 3, 2] = 0  # x = -20; its mirror x = +20 is voxel 12
    nib.Nifti1Image(mask, AFFINE).to_filename(func / f"{stem}_desc-brain_mask.nii.gz")
    for path in func.glob("*_stat-r_statmap.nii.gz"):
        values = np.asarray(nib.load(path).dataobj).copy()
        values[2, 3, 2] = 5.0  # not a score: outside the participant's mask
        nib.Nifti1Image(values, AFFINE).to_filename(path)
    prefix = root / "group" / "task-story_space-MNI152NLin2009cAsym"

    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20"]) == 0
    group_mask = np.asarray(nib.load(f"{prefix}_desc-symmetric_mask.nii.gz").dataobj) > 0
    assert not group_mask[2, 3, 2] and not group_mask[12, 3, 2]  # dropped with its mirror

    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20",
                 "--group-mask-threshold", "0.75"]) == 0
    group_mask = np.asarray(nib.load(f"{prefix}_desc-symmetric_mask.nii.gz").dataobj) > 0
    assert group_mask[2, 3, 2] and group_mask[12, 3, 2]
    record = json.loads(open(f"{prefix}_desc-symmetric_mask.json").read())
    assert record["MinimumParticipants"] == 3 and record["Rule"] == "union with a minimum count"
    scores = pd.read_csv(f"{prefix}_scores.tsv", sep="\t")
    assert scores["mean_r"].between(0, 0.5).all() and scores["left"].notna().all()
    t_map = np.asarray(nib.load(f"{prefix}_model-m1_stat-t_statmap.nii.gz").dataobj)
    assert t_map[2, 3, 2] == 0 and t_map[3, 3, 2] != 0
    difference = np.asarray(nib.load(f"{prefix}_model-m1_desc-LminusR_stat-r_statmap.nii.gz").dataobj)
    assert 0 < abs(difference[2, 3, 2]) < 0.5  # the 3 participants who have it, not sub-01's junk


def test_group_level_names_incomplete_and_missing_participants(tmp_path, capsys):
    root = write_participant_outputs(tmp_path, n_participants=3, params=PARAMS[:2])
    next((root / "sub-02" / "func").glob("*_scores.tsv")).unlink()  # a job killed before its last file
    (root / "bids" / "sub-04" / "func").mkdir(parents=True)  # in the dataset, never run
    assert main([str(root / "bids"), str(root), "group", "--group-bootstraps", "20"]) == 0
    err = capsys.readouterr().err
    assert "2 participant(s) with results: sub-01, sub-03" in err
    assert "incomplete" in err and "sub-02" in err.split("incomplete")[1].splitlines()[0]
    assert "no results" in err and "sub-04" in err.split("no results")[1].splitlines()[0]
    assert main([str(root / "bids"), str(root), "group", "--participant-label", "01", "02"]) == 66
    assert "sub-02" in capsys.readouterr().err


class _RecordedOutput:
    """Stands in for GroupOutput: keeps each image written, by its stat and desc."""

    def __init__(self):
        self.images = {}

    def image(self, data, affine, suffix, description, extra=None, **entities):
        self.images[entities.get("desc") or ""] = (np.asarray(data), extra or {})


def _fdr_maps(maps, mask):
    from bids_encoding.group.second_level import one_sample_t

    output = _RecordedOutput()
    affine = np.eye(4)
    one_sample_t(output, maps, nib.Nifti1Image(mask.astype(np.uint8), affine), affine, "m", "x", "test")
    return output.images["x"][0], output.images["xfdr05"]


def test_group_fdr_keeps_the_false_discovery_rate_of_t_maps_on_null_data():
    """With 3 participants the one-sample t has 2 degrees of freedom: read as z (as nilearn's FDR does), its
    tails are far too heavy and null voxels pass "q < 0.05" in every dataset. Under the complete null, BH's
    family-wise rate is its level: about 5% of null datasets may show any voxel."""
    rng = np.random.default_rng(0)
    mask = np.ones((10, 10, 10), dtype=bool)
    with_any = 0
    for _ in range(40):
        maps = [rng.standard_normal(mask.shape) for _ in range(3)]
        _, (thresholded, extra) = _fdr_maps(maps, mask)
        with_any += bool(np.any(thresholded != 0))
        assert extra["DegreesOfFreedom"] == 2
    assert with_any <= 6, f"{with_any} of 40 null datasets had voxels at FDR q < 0.05"


def test_group_fdr_finds_a_planted_effect_and_reports_its_threshold_in_t():
    from scipy import stats

    rng = np.random.default_rng(1)
    mask = np.ones((10, 10, 10), dtype=bool)
    effect = np.zeros(mask.shape)
    effect[:3] = 3.0  # 300 voxels with a large effect over 12 participants
    maps = [effect + rng.standard_normal(mask.shape) for _ in range(12)]
    t_map, (thresholded, extra) = _fdr_maps(maps, mask)
    found = thresholded != 0
    assert found[:3].mean() > 0.95 and found[3:].mean() < 0.05
    assert np.allclose(thresholded[found], t_map[found])  # the map keeps t values
    assert thresholded[found].min() >= extra["Threshold"] and extra["NumberOfVoxels"] == found.sum()
    # the threshold is a t of 11 df whose one-sided p is BH's largest accepted p
    p = stats.t.sf(extra["Threshold"], 11)
    assert 0 < p <= 0.05


def test_speech_and_language_models_get_their_own_scaling_laws():
    """Family ``all`` fits the language models only and ``speech`` the speech models: each recovers its own
    planted slope, which a fit of both together would mix."""
    from bids_encoding.group.scaling import scaling_table

    rng = np.random.default_rng(0)
    rows = []
    for modality, slope, sizes in (("language", 0.02, (8.1, 8.5, 9.1, 9.8)), ("speech", -0.01, (7.0, 8.0, 9.0))):
        for participant in range(8):
            offset = rng.normal(0, 0.01)
            for k, size in enumerate(sizes):
                rows.append({"participant": f"sub-{participant}", "model": f"{modality}{k}", "log10_params": size,
                             "mean_r": 0.1 + slope * size + offset + rng.normal(0, 0.002), "modality": modality,
                             "family": "hubert" if modality == "speech" else "opt"})
    fits = scaling_table(pd.DataFrame(rows), ["mean_r"], ["log10_params"], n_bootstraps=200)
    group = fits[fits["level"] == "group"].set_index("family")
    assert group.loc["all", "n_models"] == 4 and group.loc["speech", "n_models"] == 3
    assert group.loc["all", "ci_low"] <= 0.02 <= group.loc["all", "ci_high"]
    assert group.loc["speech", "ci_low"] <= -0.01 <= group.loc["speech", "ci_high"] < 0
    assert group.loc["hubert", "slope"] == pytest.approx(group.loc["speech", "slope"])
