"""Jobs of a cluster array sharing one output folder, one work folder and one feature cache."""

import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import pandas as pd

from bids_encoding.synthetic import generate_dataset


def test_eight_participant_jobs_at_once_share_an_output_folder_and_a_feature_cache(tmp_path, tiny_model):
    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, seed=11)
    bids, out = tmp_path / "bids", tmp_path / "out"
    for k in range(2, 9):  # seven more participants who heard the same story (copies: the jobs are the point)
        for source in (bids / "sub-01").rglob("*.*"):
            target = bids / f"sub-{k:02d}" / source.relative_to(bids / "sub-01").parent / source.name.replace(
                "sub-01", f"sub-{k:02d}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    labels = nib.load(tmp_path / "ground_truth" / "planted_labels.nii.gz")
    mask = tmp_path / "mask.nii.gz"  # the planted spheres: a small mask keeps eight jobs on two cores quick
    nib.Nifti1Image((labels.get_fdata() > 0).astype("uint8"), labels.affine).to_filename(mask)
    environment = {**os.environ, "BIDS_ENCODING_SKIP_REPORTS": "1"}
    logs = [tmp_path / f"job-{k}.log" for k in range(1, 9)]
    jobs = []
    for k, log in enumerate(logs, start=1):  # each job's output to a file: no pipe to fill, no deadline to miss
        with open(log, "w") as stream:
            jobs.append(subprocess.Popen([sys.executable, "-m", "bids_encoding", str(bids), str(out), "participant",
                                          "--participant-label", f"{k:02d}", "--models", str(tiny_model),
                                          "--device", "cpu", "--pvalue-method", "none", "--alphas", "10", "1000",
                                          "--omp-nthreads", "1", "--layers", "-1", "--mask", str(mask),
                                          "--feature-cache", str(tmp_path / "features")],
                                         stdout=stream, stderr=subprocess.STDOUT, env=environment))
    for job in jobs:
        job.wait()
    outputs = [log.read_text() for log in logs]
    assert [job.returncode for job in jobs] == [0] * 8, "\n".join(outputs)
    for k in range(1, 9):
        assert len(list(out.glob(f"sub-{k:02d}/func/*_scores.tsv"))) == 1
    for path in out.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.name.endswith(".nii.gz"):
            nib.load(path).get_fdata()
        elif path.suffix == ".tsv":
            pd.read_csv(path, sep="\t")
    computed = sum(text.count("computed features of") for text in outputs)
    assert computed == 3, computed  # three stories, each computed once for all eight jobs
    assert not list(out.glob(".staging-*")) and not list((out / "work" / "pybids").glob("run-*"))


def test_staging_folders_of_killed_runs_are_removed_and_those_of_live_runs_kept(tmp_path):
    import socket

    from bids_encoding.derivatives.staging import remove_stale_staging

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    killed = tmp_path / f".staging-{host}-{dead.pid}-abcd1234-sub-01_task-story_space-orig"
    live = tmp_path / f".staging-{host}-{os.getpid()}-abcd1234-sub-02_task-story_space-orig"
    elsewhere = tmp_path / f".staging-{host}x-{dead.pid}-abcd1234-sub-03_task-story_space-orig"
    for folder in (killed, live, elsewhere):
        (folder / "sub-01" / "func").mkdir(parents=True)
    assert remove_stale_staging(tmp_path) == 1
    assert not killed.exists() and live.exists() and elsewhere.exists()
