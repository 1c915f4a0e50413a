"""Reruns: complete and valid results are kept, stopped runs are finished, nothing partial looks complete."""

import json
import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_encoding import __version__
from bids_encoding.cli import main
from bids_encoding.synthetic import generate_dataset

FAST = ["--device", "cpu", "--alphas", "1", "100", "10000", "--pvalue-method", "none"]


@pytest.fixture(scope="module")
def two_stories(tmp_path_factory, tiny_model):
    """Two participants whose runs differ by their scans (so they are fitted one after the other), and a small
    mask (the planted spheres) that keeps the many runs of these tests quick."""
    root = tmp_path_factory.mktemp("rerun")
    generate_dataset(root, str(tiny_model), n_participants=2, n_runs=3, seed=5)
    bold = next((root / "bids" / "sub-02" / "func").glob("*run-1_bold.nii.gz"))
    image = nib.load(bold)
    nib.Nifti1Image(np.asarray(image.dataobj)[..., :-3], image.affine, image.header).to_filename(bold)
    labels = nib.load(root / "ground_truth" / "planted_labels.nii.gz")
    nib.Nifti1Image((labels.get_fdata() > 0).astype("uint8"), labels.affine).to_filename(root / "mask.nii.gz")
    return root / "bids"


def _arguments(bids, out, *more):
    return [str(bids), str(out), "participant", "--mask", str(bids.parent / "mask.nii.gz"), *FAST, *more]


def _maps(out, subject="01"):
    return {path.name: np.asarray(nib.load(path).dataobj)
            for path in sorted((out / f"sub-{subject}" / "func").glob("*_stat-r_statmap.nii.gz"))}


def _complete(out, subject, models, n_layers):
    """A committed result: the scores table and every map it announces (layers 0..n_layers, and best)."""
    func = out / f"sub-{subject}" / "func"
    scores = list(func.glob("*_scores.tsv"))
    if not scores:
        return False
    table = pd.read_csv(scores[0], sep="\t")
    assert sorted(table["model"].unique()) == sorted(models)
    assert len(list(func.glob("*_stat-r_statmap.nii.gz"))) == len(models) * (n_layers + 2)
    return True


def test_rerun_keeps_complete_valid_results_and_fits_what_changed(two_stories, tmp_path, tiny_model, capsys):
    from conftest import build_tiny_gpt2

    out = tmp_path / "out"
    arguments = _arguments(two_stories, out, "--participant-label", "01")
    assert main([*arguments, "--models", str(tiny_model)]) == 0
    func = out / "sub-01" / "func"
    before = {path.name: path.stat().st_mtime_ns for path in func.iterdir()}
    sidecar = json.loads(next(func.glob("*_scores.json")).read_text())
    assert list(sidecar["Fits"]) == ["tinygpt2"] and sidecar["Fits"]["tinygpt2"]["Version"] == __version__
    capsys.readouterr()

    assert main([*arguments, "--models", str(tiny_model)]) == 0  # same everything: kept as it is
    err = capsys.readouterr().err
    assert "complete results with the same settings" in err and "1 already complete" in err
    maps = {name: stamp for name, stamp in before.items() if name.endswith("_statmap.nii.gz")}
    assert {path.name: path.stat().st_mtime_ns for path in func.glob("*_statmap.nii.gz")} == maps

    other = build_tiny_gpt2(tmp_path / "other", n_embd=48, n_layer=2, seed=3)  # a model more: only it is fitted
    assert main([*arguments, "--models", str(tiny_model), str(other)]) == 0
    err = capsys.readouterr().err
    assert "kept (--recompute fits them again)" in err and "features 0 reused, 3 computed" in err
    assert _complete(out, "01", ["tinygpt2", "other"], 2)
    assert {path.name: path.stat().st_mtime_ns for path in func.glob("*model-tinygpt2*_statmap.nii.gz")} == maps
    assert list(json.loads(next(func.glob("*_scores.json")).read_text())["Fits"]) == ["tinygpt2", "other"]

    other_maps = {path.name: path.stat().st_mtime_ns for path in func.glob("*model-other*_statmap.nii.gz")}
    assert main([*arguments, "--models", str(tiny_model)]) == 0  # a model not named: its results stay
    err = capsys.readouterr().err
    kept = [line for line in err.splitlines() if "not named in --models" in line]
    assert len(kept) == 1 and "other" in kept[0] and "--remove-models other" in kept[0], err
    assert "other settings" not in kept[0]
    assert _complete(out, "01", ["tinygpt2", "other"], 2)
    assert {path.name: path.stat().st_mtime_ns for path in func.glob("*model-other*_statmap.nii.gz")} == other_maps
    assert list(json.loads(next(func.glob("*_scores.json")).read_text())["Fits"]) == ["tinygpt2", "other"]

    assert main([*arguments, "--models", str(tiny_model), "--alphas", "1", "1000"]) == 0  # a setting changed
    err = capsys.readouterr().err
    assert "complete results" not in err
    kept = [line for line in err.splitlines() if "not named in --models" in line]
    assert len(kept) == 1 and "fitted with other settings" in kept[0], err  # kept, and the log says what it is
    assert _complete(out, "01", ["tinygpt2", "other"], 2)

    assert main([*arguments, "--models", str(tiny_model), "--alphas", "1", "1000", "--remove-models", "other"]) == 0
    err = capsys.readouterr().err
    assert "removed the results of other (--remove-models)" in err and "rerun the group level" in err
    assert "1 already complete" in err  # nothing fitted: the result is rewritten without the removed model
    assert _complete(out, "01", ["tinygpt2"], 2) and not list(func.glob("*model-other*"))
    assert main([*arguments, "--models", str(tiny_model), "--alphas", "1", "1000", "--recompute"]) == 0
    assert "complete results" not in capsys.readouterr().err


def test_results_of_another_release_are_kept_when_no_stage_computes_other_numbers(two_stories, tmp_path, tiny_model,
                                                                                 capsys):
    out = tmp_path / "out"
    arguments = _arguments(two_stories, out, "--participant-label", "01", "--models", str(tiny_model))
    assert main(arguments) == 0
    sidecar_path = next((out / "sub-01" / "func").glob("*_scores.json"))
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["Fits"]["tinygpt2"]["Version"] == __version__
    assert sidecar["Fits"]["tinygpt2"]["ComputationVersions"]["Ridge"] >= 1
    sidecar["Fits"]["tinygpt2"]["Version"] = "0.1.5.dev9+gabcdef1"  # another commit: docs, reports, messages
    sidecar_path.write_text(json.dumps(sidecar))
    capsys.readouterr()
    assert main(arguments) == 0
    err = capsys.readouterr().err
    assert "1 already complete" in err and "fitting again" not in err


def test_results_of_another_computation_version_are_fitted_again_with_one_line_saying_why(
        two_stories, tmp_path, tiny_model, capsys, monkeypatch):
    from bids_encoding.ridge import solver

    out = tmp_path / "out"
    arguments = _arguments(two_stories, out, "--participant-label", "01", "--models", str(tiny_model))
    assert main(arguments) == 0
    maps = {path.name: path.stat().st_mtime_ns for path in (out / "sub-01" / "func").glob("*_statmap.nii.gz")}
    capsys.readouterr()

    monkeypatch.setattr(solver, "RIDGE_CODE_VERSION", solver.RIDGE_CODE_VERSION + 1)  # the ridge's numbers changed
    assert main(arguments) == 0
    err = capsys.readouterr().err
    why = [line for line in err.splitlines() if "computed by other code" in line]
    assert len(why) == 1 and "tinygpt2" in why[0] and "fitting again" in why[0], err
    assert f"Ridge {solver.RIDGE_CODE_VERSION - 1} -> {solver.RIDGE_CODE_VERSION}" in why[0]
    assert "already complete" not in err
    refitted = {path.name: path.stat().st_mtime_ns for path in (out / "sub-01" / "func").glob("*_statmap.nii.gz")}
    assert refitted.keys() == maps.keys() and all(refitted[name] != maps[name] for name in maps)

    assert main(arguments) == 0  # made by this code now: kept
    err = capsys.readouterr().err
    assert "1 already complete" in err and "computed by other code" not in err

    sidecar_path = next((out / "sub-01" / "func").glob("*_scores.json"))  # a result from before the versions
    sidecar = json.loads(sidecar_path.read_text())
    del sidecar["Fits"]["tinygpt2"]["ComputationVersions"]
    sidecar_path.write_text(json.dumps(sidecar))
    assert main(arguments) == 0
    err = capsys.readouterr().err
    assert "before computation versions" in err and "already complete" not in err


def _run_until(command, log, condition, environment):
    """Start the command; SIGKILL it as soon as ``condition()`` holds. Returns the log text. No deadline: on a
    loaded machine the run is slower, and the kill point comes later."""
    with open(log, "w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=environment)
        while process.poll() is None:
            if condition():
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        process.wait()
    assert process.returncode == -signal.SIGKILL, f"finished before the kill point:\n{log.read_text()}"
    return log.read_text()


def test_killed_runs_leave_nothing_that_looks_complete_and_the_rerun_finishes_the_work(two_stories, tmp_path,
                                                                                       tiny_model):
    out, cache = tmp_path / "out", tmp_path / "features"
    slow = ["--pvalue-method", "circular", "--permutations", "3000"]  # time to stop it between two layers
    command = [sys.executable, "-m", "bids_encoding",
               *_arguments(two_stories, out, "--models", str(tiny_model), "--feature-cache", str(cache), *slow)]
    environment = {**os.environ, "BIDS_ENCODING_SKIP_REPORTS": "1", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "log.txt"

    def committed(subject):
        return bool(list(out.glob(f"sub-{subject}/func/*_scores.tsv")))

    # 1. during feature extraction
    _run_until(command, log, lambda: "loading model" in log.read_text(), environment)
    assert not committed("01") and not committed("02")
    # 2. after sub-01's first layer fit
    _run_until(command, log, lambda: bool(list((out / "work" / "fits").glob("*/best.npz"))), environment)
    assert not committed("01") and not committed("02")
    assert list(out.glob(".staging-*"))  # left behind, but a dot folder: no result
    # 3. after sub-01 is committed, while sub-02 is fitted
    text = _run_until(command, log, lambda: committed("01"), environment)
    assert "layer fit(s) of a stopped run reused" in text and "removed 1 staging folder(s)" in text
    assert "computed features" not in text  # every story's features were cached by the first two runs
    assert _complete(out, "01", ["tinygpt2"], 2) and not committed("02")
    # 4. to the end
    finished = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert finished.returncode == 0, finished.stderr
    assert "sub-01 task-story: complete results with the same settings" in finished.stderr
    assert _complete(out, "01", ["tinygpt2"], 2) and _complete(out, "02", ["tinygpt2"], 2)
    assert not list(out.glob(".staging-*")) and not list((out / "work" / "fits").iterdir())

    reference = tmp_path / "reference"  # the same analysis, never stopped
    assert main(_arguments(two_stories, reference, "--models", str(tiny_model), "--feature-cache", str(cache),
                           *slow)) == 0
    for subject in ("01", "02"):
        resumed, clean = _maps(out, subject), _maps(reference, subject)
        assert resumed.keys() == clean.keys()
        for name in clean:
            np.testing.assert_allclose(resumed[name], clean[name], atol=1e-6)


def test_the_fit_stage_says_how_far_it_is_with_an_estimate_when_no_progress_bar_shows(two_stories, tmp_path,
                                                                                     tiny_model, capsys):
    out = tmp_path / "out"
    assert main(_arguments(two_stories, out, "--participant-label", "01", "--models", str(tiny_model))) == 0
    err = capsys.readouterr().err  # not a terminal: no bar, a line per layer
    lines = [line for line in err.splitlines() if "tinygpt2: layer" in line and "fitted" in line]
    assert [line.split("layer ")[1].split(" (")[0] for line in lines] == ["0 fitted", "1 fitted", "2 fitted"], err
    assert "1 of 3" in lines[0] and "3 of 3" in lines[-1]
    assert "left" in lines[0] and "s left" not in lines[-1]  # an estimate while layers remain
