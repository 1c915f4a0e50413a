"""Joint models of several feature spaces (--joint-model): the command line, and the planted split recovered by
the participant level (each region's variance given to the space that drives it)."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import validator_errors

from bids_encoding.cli import main
from bids_encoding.cli.parser import config_from_args, parse_args
from bids_encoding.errors import EXIT_USAGE, UsageError
from bids_encoding.features.models import model_label
from bids_encoding.synthetic import generate_dataset


def _config(tmp_path, *options):
    (tmp_path / "bids").mkdir(exist_ok=True)
    return config_from_args(parse_args([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *options]))


def test_joint_spaces_join_the_models_once(tmp_path):
    config = _config(tmp_path, "--models", "wordrate", "--joint-model", "lm=gpt2+wordrate",
                     "gpt2+wordlength", "--joint-layer", "3", "--joint-solver", "stacking")
    assert config.models == ("wordrate", "gpt2", "wordlength")
    assert config.joint_models == (("lm", ("gpt2", "wordrate")), (None, ("gpt2", "wordlength")))
    assert (config.joint.layer, config.joint.solver, config.joint.unique) == ("3", "stacking", True)


@pytest.mark.parametrize("entry", ["gpt2", "gpt2+", "gpt2+gpt2", "a b=gpt2+wordrate"])
def test_malformed_joint_model_is_a_usage_error(tmp_path, entry):
    with pytest.raises(UsageError, match="--joint-model"):
        _config(tmp_path, "--joint-model", entry)


def test_joint_models_sharing_a_label_stop_the_run(tmp_path, capsys):
    (tmp_path / "bids").mkdir()
    (tmp_path / "bids" / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--joint-model",
                 "gpt2+wordrate", "gpt2+wordlength", "--skip-bids-validation"])
    assert code == EXIT_USAGE
    assert "label jointgpt2" in capsys.readouterr().err


def test_bad_joint_layer_is_refused_by_the_parser(tmp_path):
    with pytest.raises(UsageError, match="--joint-layer: last: best or a layer index"):
        parse_args([str(tmp_path), str(tmp_path / "out"), "participant", "--joint-layer", "last"])


@pytest.fixture(scope="module")
def split_run(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("joint")
    generate_dataset(root, str(tiny_model), n_participants=1, n_runs=4, seed=3, lowlevel_amplitude=1.0)
    output_dir = root / "derivatives"
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--joint-model", f"{tiny_model}+wordrate", "--pvalue-method", "none", "--joint-candidates", "5"])
    return root, output_dir, code


def _statmap(output_dir, subject, model, **entities):
    name = "_".join([f"sub-{subject}_task-story_space-orig_model-{model}"]
                    + [f"{key}-{value}" for key, value in entities.items()] + ["statmap.nii.gz"])
    return output_dir / f"sub-{subject}" / "func" / name


def test_planted_split_gives_each_region_to_its_space(split_run, tiny_model):
    root, output_dir, code = split_run
    assert code == 0
    truth = root / "ground_truth"
    lm_region = np.asarray(nib.load(truth / "planted_labels.nii.gz").dataobj) == 1
    auditory = np.asarray(nib.load(truth / "planted_lowlevel.nii.gz").dataobj) == 1
    label, joint = model_label(str(tiny_model)), "joint" + model_label(str(tiny_model))
    mask = np.asarray(nib.load(output_dir / "sub-01" / "func" /
                               "sub-01_task-story_space-orig_desc-brain_mask.nii.gz").dataobj) > 0
    only_lm, only_auditory = lm_region & ~auditory & mask, auditory & ~lm_region & mask
    assert only_lm.sum() >= 10 and only_auditory.sum() >= 10
    unique = {space: np.asarray(nib.load(_statmap(output_dir, "01", joint, desc=space,
                                                  stat="uniquer2")).dataobj)
              for space in (label, "wordrate")}
    dominant_lm = unique[label] > unique["wordrate"]
    assert dominant_lm[only_lm].mean() >= 0.9
    assert (~dominant_lm[only_auditory]).mean() >= 0.9
    split = {space: np.asarray(nib.load(_statmap(output_dir, "01", joint, desc=space,
                                                 stat="splitr2")).dataobj) for space in (label, "wordrate")}
    assert (split[label] > split["wordrate"])[only_lm].mean() >= 0.9
    assert (split["wordrate"] > split[label])[only_auditory].mean() >= 0.9
    joint_r2 = np.asarray(nib.load(_statmap(output_dir, "01", joint, stat="r2")).dataobj)
    alone = np.asarray(nib.load(_statmap(output_dir, "01", label, layer="best", stat="r2")).dataobj)
    assert np.nanmean(joint_r2[only_auditory]) > np.nanmean(alone[only_auditory]) + 0.05


def test_joint_sidecars_and_scores(split_run, tiny_model):
    _, output_dir, _ = split_run
    label, joint = model_label(str(tiny_model)), "joint" + model_label(str(tiny_model))
    penalties = {space: np.asarray(nib.load(_statmap(output_dir, "01", joint, desc=space, stat="penalty")).dataobj)
                 for space in (label, "wordrate")}
    mask = penalties[label] > 0
    assert np.isfinite(penalties[label][mask]).all() and (penalties["wordrate"][mask] > 0).all()
    assert not np.allclose(penalties[label][mask], penalties["wordrate"][mask])  # one penalty per space and voxel
    path = _statmap(output_dir, "01", joint, desc="wordrate", stat="penalty")
    sidecar = json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())
    spaces = sidecar["JointModel"]["Spaces"]
    assert [space["Label"] for space in spaces] == [label, "wordrate"]
    assert len(spaces[0]["Layer"]) == 4  # one per outer fold
    assert sidecar["JointModel"]["Solver"] == "banded"
    assert sidecar["Model"]["Id"].startswith("joint:")
    scores = pd.read_csv(output_dir / "sub-01" / "func" / "sub-01_task-story_space-orig_scores.tsv", sep="\t")
    rows = scores[scores["model"] == joint]
    assert list(rows["layer"]) == ["joint", label, "wordrate"]
    assert rows["unique_r2"].notna().sum() == 2


def test_joint_outputs_are_valid_bids(split_run):
    _, output_dir, _ = split_run
    assert validator_errors(output_dir) == []


def test_stacked_joint_model_weights_each_region_to_its_space(split_run, tiny_model):
    """--joint-solver stacking on the same data: convex weights per voxel, the planted spheres weighted to their
    spaces, and the sidecar names the method."""
    root, _, _ = split_run
    output_dir = root / "stacked"
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--joint-model", f"lm={tiny_model}+wordrate", "--joint-solver", "stacking", "--joint-layer", "1",
                 "--no-unique-variance", "--pvalue-method", "none"])
    assert code == 0
    label = model_label(str(tiny_model))
    weights = {space: np.asarray(nib.load(_statmap(output_dir, "01", "lm", desc=space, stat="weight")).dataobj)
               for space in (label, "wordrate")}
    mask = np.asarray(nib.load(output_dir / "sub-01" / "func" /
                               "sub-01_task-story_space-orig_desc-brain_mask.nii.gz").dataobj) > 0
    np.testing.assert_allclose((weights[label] + weights["wordrate"])[mask], 1, atol=1e-5)
    truth = root / "ground_truth"
    lm_region = np.asarray(nib.load(truth / "planted_labels.nii.gz").dataobj) == 1
    auditory = np.asarray(nib.load(truth / "planted_lowlevel.nii.gz").dataobj) == 1
    assert (weights[label] > 0.5)[lm_region & ~auditory & mask].mean() >= 0.9
    assert (weights["wordrate"] > 0.5)[auditory & ~lm_region & mask].mean() >= 0.9
    assert not _statmap(output_dir, "01", "lm", desc=label, stat="uniquer2").exists()
    path = _statmap(output_dir, "01", "lm", stat="r")
    sidecar = json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["JointModel"]["Solver"] == "stacking"
    assert sidecar["JointModel"]["Spaces"][0]["Layer"] == [1, 1, 1, 1]


def test_a_rerun_keeps_the_joint_model(split_run, tiny_model, capsys):
    """The same command again: the joint model's fingerprint matches, its files are kept, nothing is refitted."""
    root, output_dir, _ = split_run
    path = _statmap(output_dir, "01", "joint" + model_label(str(tiny_model)), stat="r2")
    before = path.stat().st_ino, path.read_bytes()
    capsys.readouterr()
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--joint-model", f"{tiny_model}+wordrate", "--pvalue-method", "none", "--joint-candidates", "5"])
    assert code == 0
    assert "1 already complete" in capsys.readouterr().err
    assert (path.stat().st_ino, path.read_bytes()) == before
