"""Bad input: one-line error naming the file, a BIDS-Apps exit code, no output that looks complete."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import tree_digest

from bids_encoding.cli import main


@pytest.fixture
def dataset(small_dataset, tmp_path):
    copy = tmp_path / "bids"
    shutil.copytree(small_dataset, copy)
    return copy


def run(bids_dir, output_dir, tiny_model, *extra):
    return main([str(bids_dir), str(output_dir), "participant", "--models", str(tiny_model),
                 "--device", "cpu", *extra])


def assert_failed_cleanly(capsys, code, expected_code, *fragments, output_dir=None):
    err = capsys.readouterr().err
    assert code == expected_code, err
    message = [line for line in err.splitlines() if line.startswith("bids_encoding: error:")]
    assert len(message) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in message[0]
    if output_dir is not None and output_dir.exists():
        assert not list(output_dir.rglob("*_statmap.nii.gz"))
        assert not list(output_dir.rglob("*_scores.tsv"))
        assert not list(output_dir.glob(".staging-*"))


def test_word_after_end_of_scan(dataset, tmp_path, tiny_model, capsys):
    events_path = dataset / "task-story_run-2_events.tsv"
    events = pd.read_csv(events_path, sep="\t")
    events.loc[len(events)] = [5000.0, 0.3, "word", "late"]
    events.to_csv(events_path, sep="\t", index=False)
    before = tree_digest(dataset)
    out = tmp_path / "out"
    code = run(dataset, out, tiny_model)
    assert_failed_cleanly(capsys, code, 65, "task-story_run-2_events.tsv", "'late'", "after the end",
                          output_dir=out)
    assert tree_digest(dataset) == before


def test_run_without_words(dataset, tmp_path, tiny_model, capsys):
    events_path = dataset / "task-story_run-3_events.tsv"
    events = pd.read_csv(events_path, sep="\t")
    events["trial_type"] = "silence"
    events.to_csv(events_path, sep="\t", index=False)
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "task-story_run-3_events.tsv",
                          "no word events", output_dir=out)


def test_per_run_events_file_overrides_the_top_level_one(dataset, tmp_path, tiny_model, capsys):
    own = dataset / "sub-01" / "func" / "sub-01_task-story_run-1_events.tsv"
    pd.DataFrame({"onset": [1.0], "duration": [0.3], "trial_type": ["word"], "word": ["x"]}).iloc[:0].to_csv(
        own, sep="\t", index=False)
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "sub-01_task-story_run-1_events.tsv",
                          output_dir=out)


def test_fewer_than_three_runs_fall_back_to_chunks(dataset, tmp_path, tiny_model, capsys):
    """Two stimuli: outer folds are the stimuli, alphas chosen on chunks (recorded); one too-short stimulus: a
    clear error saying what was found."""
    (dataset / "sub-01" / "func" / "sub-01_task-story_run-3_bold.nii.gz").unlink()
    out = tmp_path / "out"
    assert run(dataset, out, tiny_model) == 0
    assert "2 distinct stimulus/stimuli" in capsys.readouterr().err
    sidecar = json.loads(next(out.glob("sub-01/func/*_layer-best_stat-r_statmap.json")).read_text())
    assert sidecar["Ridge"]["InnerCV"]["Scheme"] == "chunks" and "Fallback" in sidecar["Ridge"]
    (dataset / "sub-01" / "func" / "sub-01_task-story_run-2_bold.nii.gz").unlink()
    out = tmp_path / "out1"
    n_scans = nib.load(dataset / "sub-01" / "func" / "sub-01_task-story_run-1_bold.nii.gz").shape[3]
    trim_end = str(n_scans - 10 - 40)  # 40 scans left: too few for 5 chunks of 10 with gaps of 5
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model, "--trim-scans", "10", trim_end), 65,
                          "run-1_bold.nii.gz", "single stimulus of", "too short", output_dir=out)


def test_missing_repetition_time(dataset, tmp_path, tiny_model, capsys):
    sidecar = dataset / "task-story_bold.json"
    sidecar.write_text(json.dumps({"TaskName": "story"}))
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "RepetitionTime", "_bold.nii.gz",
                          output_dir=out)


def test_missing_events_file(dataset, tmp_path, tiny_model, capsys):
    (dataset / "task-story_run-1_events.tsv").unlink()
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 66, "sub-01_task-story_run-1_bold.nii.gz",
                          output_dir=out)


def test_events_without_word_column(dataset, tmp_path, tiny_model, capsys):
    events_path = dataset / "task-story_run-1_events.tsv"
    pd.read_csv(events_path, sep="\t").drop(columns="word").to_csv(events_path, sep="\t", index=False)
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "task-story_run-1_events.tsv", "'word'",
                          output_dir=out)


def test_unreadable_nifti(dataset, tmp_path, tiny_model, capsys):
    (dataset / "sub-01" / "func" / "sub-01_task-story_run-2_bold.nii.gz").write_bytes(b"")
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "sub-01_task-story_run-2_bold.nii.gz",
                          output_dir=out)


def test_unknown_participant(dataset, tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model, "--participant-label", "07"), 18, "sub-07",
                          output_dir=out)


def test_unknown_task(dataset, tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model, "--task", "rest"), 18, "task-rest",
                          output_dir=out)


def test_missing_dataset(tmp_path, tiny_model, capsys):
    assert_failed_cleanly(capsys, run(tmp_path / "nowhere", tmp_path / "out", tiny_model), 66, "nowhere")


def test_not_a_bids_dataset(dataset, tmp_path, tiny_model, capsys):
    (dataset / "dataset_description.json").unlink()
    assert_failed_cleanly(capsys, run(dataset, tmp_path / "out", tiny_model), 16, "dataset_description.json")


def test_output_inside_the_dataset(dataset, tiny_model, capsys):
    before = tree_digest(dataset)
    assert_failed_cleanly(capsys, run(dataset, dataset / "derivatives" / "x", tiny_model), 64, "inside")
    assert tree_digest(dataset) == before


def test_missing_model(dataset, tmp_path, capsys):
    code = main([str(dataset), str(tmp_path / "out"), "participant", "--models", str(tmp_path / "no_model")])
    assert_failed_cleanly(capsys, code, 66, "no_model")


def test_unreachable_hub_model(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    code = main([str(dataset), str(tmp_path / "out"), "participant", "--models", "some-org/absent-model"])
    assert_failed_cleanly(capsys, code, 66, "some-org/absent-model", "HF_HOME", output_dir=tmp_path / "out")


@pytest.mark.parametrize("level, expected", [("group", 66), ("session", 17)])
def test_analysis_levels(dataset, tmp_path, level, expected, capsys):
    code = main([str(dataset), str(tmp_path / "out"), level])
    assert_failed_cleanly(capsys, code, expected, level)


def test_usage_error_exit_code(dataset, tmp_path, capsys):
    """argparse's errors too: one line (no usage text), exit 64."""
    assert main([str(dataset), str(tmp_path / "out"), "participant", "--pooling", "max"]) == 64
    assert capsys.readouterr().err.strip().splitlines() == [
        "bids_encoding: error: --pooling: invalid choice: 'max' (choose from 'last', 'mean')"]


def test_bids_examples_placeholder_nifti(tmp_path, tiny_model, capsys):
    """Like bids-examples: valid names, empty NIfTI placeholders, block events without words."""
    root = tmp_path / "ds"
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.8.0"}))
    (root / "task-rhymejudgment_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    for run_label in (1, 2, 3):
        (func / f"sub-01_task-rhymejudgment_run-{run_label}_bold.nii.gz").write_bytes(b"")
        pd.DataFrame({"onset": [0.0, 20.0], "duration": [20.0, 20.0], "trial_type": ["word", "pseudoword"]}
                     ).to_csv(func / f"sub-01_task-rhymejudgment_run-{run_label}_events.tsv", sep="\t", index=False)
    assert_failed_cleanly(capsys, run(root, tmp_path / "out", tiny_model), 65, "_bold.nii.gz",
                          output_dir=tmp_path / "out")


def test_too_little_memory(dataset, tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model, "--mem", "1MB"), 64, "--mem", output_dir=out)


def test_runs_too_short_for_the_trimming(dataset, tmp_path, tiny_model, capsys):
    before = tree_digest(dataset)
    out = tmp_path / "out"
    code = run(dataset, out, tiny_model, "--trim-scans", "60", "60")
    assert_failed_cleanly(capsys, code, 65, "_bold.nii.gz", "--trim-scans 60 60", "trim fewer scans",
                          output_dir=out)
    assert tree_digest(dataset) == before


def test_truncated_nifti_names_the_file(dataset, tmp_path, tiny_model, capsys):
    bold = dataset / "sub-01" / "func" / "sub-01_task-story_run-2_bold.nii.gz"
    bold.write_bytes(bold.read_bytes()[: bold.stat().st_size // 2])
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "sub-01_task-story_run-2_bold.nii.gz",
                          "truncated or corrupt", output_dir=out)


def test_invalid_json_sidecar_names_the_file(dataset, tmp_path, tiny_model, capsys):
    (dataset / "task-story_bold.json").write_text('{"RepetitionTime": 2.0,')
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "task-story_bold.json", "not valid JSON",
                          output_dir=out)


def test_output_folder_that_cannot_be_created(dataset, tmp_path, tiny_model, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert_failed_cleanly(capsys, run(dataset, blocker / "out", tiny_model), 73, str(blocker / "out"),
                          "choose a folder you can write to")


def test_wrong_repetition_time_in_one_sidecar_names_the_run(dataset, tmp_path, tiny_model, capsys):
    """Its words would otherwise be reported as late: the header and the other runs say which value is wrong."""
    (dataset / "sub-01" / "func" / "sub-01_task-story_run-2_bold.json").write_text('{"RepetitionTime": 2.5}')
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "sub-01_task-story_run-2_bold.nii.gz",
                          "RepetitionTime 2.5 s in its sidecar", "say 2 s", output_dir=out)


def test_different_repetition_times_name_the_runs(dataset, tmp_path, tiny_model, capsys):
    bold = dataset / "sub-01" / "func" / "sub-01_task-story_run-2_bold.nii.gz"
    image = nib.load(bold)
    image.header["pixdim"][4] = 2.5
    nib.Nifti1Image(image.get_fdata(), image.affine, image.header).to_filename(bold)
    (dataset / "sub-01" / "func" / "sub-01_task-story_run-2_bold.json").write_text('{"RepetitionTime": 2.5}')
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "2.5 s: sub-01_task-story_run-2_bold.nii.gz",
                          "2 s: sub-01_task-story_run-1_bold.nii.gz", output_dir=out)


def test_derivative_dataset_given_as_bids_dir_says_what_to_give(dataset, tmp_path, tiny_model, capsys):
    """ds000001-fmriprep in bids-examples: sub-* folders, but a derivative dataset pybids does not index as raw."""
    description = json.loads((dataset / "dataset_description.json").read_text())
    (dataset / "dataset_description.json").write_text(json.dumps({**description, "DatasetType": "derivative"}))
    for path in dataset.rglob("*_bold.nii.gz"):
        path.rename(path.with_name(path.name.replace("_bold", "_space-MNI152NLin2009cAsym_desc-preproc_bold")))
    out = tmp_path / "out"
    code = run(dataset, out, tiny_model)
    err = capsys.readouterr().err
    assert code == 18 and "derivative dataset" in err and "raw dataset as BIDS_DIR" in err, err


def test_runs_that_differ_by_acquisition_are_chosen_with_a_filter_file(dataset, tmp_path, tiny_model, capsys):
    func = dataset / "sub-01" / "func"
    shutil.copy(func / "sub-01_task-story_run-1_bold.nii.gz", func / "sub-01_task-story_acq-mb_run-1_bold.nii.gz")
    out = tmp_path / "out"
    assert_failed_cleanly(capsys, run(dataset, out, tiny_model), 65, "differ in acquisition", "--bids-filter-file",
                          output_dir=out)
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"acq": None}}))
    assert run(dataset, out, tiny_model, "--bids-filter-file", str(filters), "--permutations", "10") == 0
    sidecar = json.loads(next(out.glob("sub-01/func/*_layer-best_stat-r_statmap.json")).read_text())
    assert all("acq-" not in r["Bold"] for r in sidecar["Runs"]) and len(sidecar["Runs"]) == 3


def test_nan_voxels_constant_voxels_and_duplicate_words_are_counted_and_recorded(dataset, tmp_path, tiny_model,
                                                                                  capsys):
    func = dataset / "sub-01" / "func"
    for run_label, value, z in (("1", np.nan, 9), ("2", 700.0, 12)):
        path = func / f"sub-01_task-story_run-{run_label}_bold.nii.gz"
        image = nib.load(path)
        data = image.get_fdata()
        data[9, 11, z:z + 3, :] = value  # three voxels inside the brain
        nib.Nifti1Image(data.astype(np.float32), image.affine, image.header).to_filename(path)
    events_path = dataset / "task-story_run-3_events.tsv"
    events = pd.read_csv(events_path, sep="\t")
    pd.concat([events, events.iloc[[5, 6]]]).sort_values("onset").to_csv(events_path, sep="\t", index=False)
    out = tmp_path / "out"
    assert run(dataset, out, tiny_model, "--permutations", "10") == 0
    err = capsys.readouterr().err
    assert "3 voxel(s) with NaN" in err and "3 voxel(s) constant" in err and "2 duplicate word row(s)" in err
    runs = json.loads(next(out.glob("sub-01/func/*_layer-best_stat-r_statmap.json")).read_text())["Runs"]
    assert any("NaN" in note for note in runs[0]["Notes"]) and any("constant" in n for n in runs[1]["Notes"])
    assert any("duplicate" in note for note in runs[2]["Notes"])


def _header_only(path, shape=(2, 2, 2, 100)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.zeros(shape, np.int16), np.eye(4))
    image.header["pixdim"][4] = 2.0
    image.to_filename(path)


@pytest.mark.parametrize("kind, code, fragment", [
    ("anatomy only", 18, "no BOLD file for sub-01"),  # 67 of the 108 bids-examples: asl, dwi, eeg, anat ...
    ("atlas, no participant", 18, "no participant (sub-*) folder"),  # the atlas-* examples
    ("fmriprep in two spaces", 65, "choose one with --space"),  # the 'synthetic' example's derivatives
])
def test_odd_layouts_of_the_bids_examples_sweep_end_cleanly(kind, code, fragment, tmp_path, tiny_model, capsys):
    """The kinds of layout the bids-examples sweep met (scripts/bids_examples_sweep.tsv), built here; the
    others have their own tests above (empty NIfTI, acq-, events, multi-echo, derivative dataset)."""
    root = tmp_path / "ds"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": kind, "BIDSVersion": "1.9.0"}))
    if kind == "anatomy only":
        _header_only(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", (2, 2, 2))
    elif kind.startswith("atlas"):
        _header_only(root / "atlas-AAL" / "atlas-AAL_dseg.nii.gz", (2, 2, 2))
    else:
        (root / "task-nback_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
        _header_only(root / "sub-01" / "func" / "sub-01_task-nback_bold.nii.gz")
        for space in ("MNI152NLin2009cAsym", "T1w"):
            _header_only(root / "derivatives" / "fmriprep" / "sub-01" / "func" /
                         f"sub-01_task-nback_space-{space}_desc-preproc_bold.nii.gz")
    before = tree_digest(root)
    assert_failed_cleanly(capsys, run(root, tmp_path / "out", tiny_model), code, fragment,
                          output_dir=tmp_path / "out")
    assert tree_digest(root) == before


def test_an_unknown_participant_label_leaves_no_report_of_a_participant_that_does_not_exist(dataset, tmp_path,
                                                                                            tiny_model, capsys,
                                                                                            monkeypatch):
    monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", "0")
    out = tmp_path / "out"
    code = run(dataset, out, tiny_model, "--participant-label", "99")
    assert_failed_cleanly(capsys, code, 18, "99")
    assert not list(out.glob("sub-*.html"))


def test_an_unexpected_error_names_the_log_file_that_holds_its_details(dataset, tmp_path, tiny_model, capsys,
                                                                       monkeypatch):
    import bids_encoding.participant

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(bids_encoding.participant, "run_participant_level", broken)
    out = tmp_path / "out"
    assert run(dataset, out, tiny_model) == 1
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "please report it" in line)
    assert "unexpected RuntimeError: a bug" in line and "OUTPUT_DIR" not in line and "Traceback" not in err
    log = next((out / "logs").glob("bids_encoding_*.log"))
    assert str(log) in line and "RuntimeError: a bug" in log.read_text()
