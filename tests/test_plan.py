"""Cluster stages: ``--plan`` sizes the jobs without computing anything, ``--features-only`` fills the cache."""


import pytest

from bids_encoding.cli import main
from bids_encoding.plan import ridge_flop


def test_plan_lists_the_work_and_sizes_the_jobs_without_computing(small_dataset, tiny_model, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    arguments = [str(small_dataset), str(out), "participant", "--models", str(tiny_model), "wordrate",
                 "--feature-cache", str(cache), "--device", "cpu", "--nprocs", "2"]
    assert main([*arguments, "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "plan: 1 participant(s), 1 participant-task(s)" in printed and "3 distinct stimuli" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.startswith(("tinygpt2", "wordrate"))}
    assert rows["tinygpt2"][2:5] == ["3", "32", "0/3"]  # layers 0-2, hidden 32, nothing cached yet
    assert "--array=1-1 --cpus-per-task=2" in printed
    assert not list(out.glob("sub-*")) and not cache.exists()  # nothing computed, nothing written

    assert main([*arguments, "--features-only"]) == 0
    assert "3 computed" in capsys.readouterr().err and not list(out.glob("sub-*"))
    assert main([*arguments, "--plan"]) == 0
    printed = capsys.readouterr().out
    assert next(line for line in printed.splitlines() if line.startswith("tinygpt2")).split()[4] == "3/3"
    assert "features first" not in printed  # every feature cached: no feature stage to plan
    assert main([*arguments, "--pvalue-method", "none", "--alphas", "1", "100"]) == 0
    assert "features 3 reused, 0 computed" in capsys.readouterr().err


def test_ridge_operations_match_the_benchmark_count():
    """The planner's count of the ridge's main products is the one benchmarks/bench_ridge.py measures."""
    n_runs, n_scans, p, v, alphas = 9, 310, 768, 20000, 13
    n, n_val = n_runs * n_scans, n_scans
    benchmark = n_runs * ((n_runs - 1) * 2 * alphas * n_val * p * v + n_runs * 2 * p ** 2 * v
                          + 2 * (n - n_val) * p * v)
    decompositions = n_runs * n_runs * (10 * p ** 3 + 2 * (n - n_val) * p ** 2)
    assert ridge_flop(n, p, v, n_runs, alphas) == pytest.approx(benchmark + decompositions)
    assert ridge_flop(n, p, v, n_runs, alphas, n_permutations=1000) - ridge_flop(n, p, v, n_runs, alphas) == \
        pytest.approx(1000 * 2 * n * v)


def test_slurm_submission_plans_the_study_without_submitting(small_dataset, tiny_model, tmp_path):
    """scripts/slurm/submit.sh --plan-only: the participant list and the plan, nothing submitted."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    study = tmp_path / "study.env"
    study.write_text(f'BIDS_DIR={small_dataset}\nOUT_DIR={tmp_path / "out"}\nFEATURE_CACHE={tmp_path / "cache"}\n'
                     f'WORK_DIR={tmp_path / "work"}\nMODELS="{tiny_model} wordrate"\nOPTIONS="--device cpu"\n'
                     'IMAGE=""\n')
    script = Path(__file__).resolve().parents[1] / "scripts" / "slurm" / "submit.sh"
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script), str(study), "--plan-only"], capture_output=True, text=True,
                          env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "study: 1 participant(s), 2 model(s)" in done.stdout and "--array=1-1" in done.stdout
    assert (tmp_path / "out" / "logs" / "slurm" / "participants.txt").read_text() == "01\n"
    assert "submitted" not in done.stdout and not list((tmp_path / "out").glob("sub-*"))
