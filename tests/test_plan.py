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


def test_the_planner_counts_the_form_the_solver_runs():
    """With more features than training scans the solver runs the dual form, and the planner counts it: at
    (b) (p = 5,120, 9 runs of 278 scans) far fewer operations than the primal form's."""
    from bids_encoding.ridge import NestedRidgeCV

    n_runs, n_scans, alphas = 9, 278, 13
    for p in (768, 5120):
        form = NestedRidgeCV()._form((n_runs - 1) * n_scans, p)
        assert ridge_flop(n_runs * n_scans, p, 20000, n_runs, alphas) == \
            ridge_flop(n_runs * n_scans, p, 20000, n_runs, alphas, form=form)
    dual = ridge_flop(n_runs * n_scans, 5120, 20000, n_runs, alphas, form="dual")
    primal = ridge_flop(n_runs * n_scans, 5120, 20000, n_runs, alphas, form="primal")
    assert dual < primal / 3


def test_the_planner_counts_the_neuron_analysis_at_its_measured_rate():
    """--neuron-patterns adds the analysis at the rate bench_neurons measured: SmolLM2-135M's shape (30 layers of
    1,536 neurons, 1,084 scans, 64 patterns, 4 folds, 2 threads) gives the 253 s measured."""
    from types import SimpleNamespace

    from bids_encoding.plan import FFN_WIDTH, _neuron_seconds

    config = SimpleNamespace(neurons=SimpleNamespace(n_patterns=64))
    info = SimpleNamespace(hidden_size=1536 / FFN_WIDTH)
    spec = SimpleNamespace(is_baseline=False)
    assert _neuron_seconds(config, info, 30, 1084, 4, 2, spec) == pytest.approx(253)
    assert _neuron_seconds(config, info, 30, 1084, 4, 4, spec) == pytest.approx(253 / 2)
    assert _neuron_seconds(SimpleNamespace(neurons=None), info, 30, 1084, 4, 2, spec) == 0
    assert _neuron_seconds(config, info, 30, 1084, 4, 2, SimpleNamespace(is_baseline=True)) == 0


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


def test_the_plan_counts_what_a_procedure_changes(small_dataset, tiny_model, tmp_path, capsys):
    """bgp2024's 4 mm grid and 64-token steps, antonello2023's one outer fold."""
    from bids_encoding.features import FeatureSettings
    from bids_encoding.plan import passes_per_token

    assert passes_per_token(FeatureSettings(), 1024) == 2
    assert passes_per_token(FeatureSettings(step=64), 1024) == 16
    arguments = [str(small_dataset), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--device", "cpu", "--nprocs", "2", "--plan"]
    assert main([*arguments, "--procedure", "bgp2024"]) == 0
    assert f"{int(37 * 46 * 38 * 0.35)} voxels (estimated on the procedure's grid)" in capsys.readouterr().out
    assert main([*arguments, "--procedure", "antonello2023"]) == 0
    assert "3 outer folds (one fitted: a fixed test stimulus)" in capsys.readouterr().out


def test_the_plan_counts_the_joint_models_fits(small_dataset, tiny_model, tmp_path, capsys):
    """--joint-model adds a row: the banded ridge's candidates times a dual-form ridge of all the columns, and the
    fits without each space (unique variance) unless --no-unique-variance."""
    from bids_encoding.features.joint import JointSettings
    from bids_encoding.plan import joint_flop, ridge_products

    settings = JointSettings(n_iter=5)
    n, v, folds, alphas = 900, 1000, 3, 4
    dual = {width: sum(ridge_products(n, width, v, folds, alphas, form="dual")) for width in (32, 33, 2, 1)}
    flop, fits = joint_flop(n, [32, 1], v, folds, alphas, settings)
    assert fits == 3 and flop == pytest.approx(5 * dual[33] + dual[1] + dual[32])
    assert joint_flop(n, [32, 1], v, folds, alphas, JointSettings(n_iter=5, unique=False)) == (5 * dual[33], 1)
    stacked = joint_flop(n, [32, 1], v, folds, alphas, JointSettings(solver="stacking", unique=False))[0]
    assert stacked == pytest.approx(ridge_flop(n, 32, v, folds, alphas) + ridge_flop(n, 1, v, folds, alphas))

    arguments = [str(small_dataset), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--device", "cpu", "--nprocs", "2", "--plan"]
    assert main(arguments) == 0
    alone = capsys.readouterr().out
    assert main([*arguments, "--joint-model", f"lm={tiny_model}+wordrate"]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("lm ")).split()
    assert row[3] == "33" and row[4:6] == ["-", "-"]  # 32 + 1 columns; no features of its own
    assert row[6] != "0:00:00"
    assert any(line.startswith("wordrate") for line in printed.splitlines())  # its spaces fitted alone too

    def total(text):
        return next(line for line in text.splitlines() if line.startswith("fits:")).split()[1]
    assert total(printed) > total(alone)


def test_the_plan_counts_the_data_scaling_fits():
    """--data-scaling: per outer fold, size and draw, one fold of a nested ridge on the subset and the held-out
    stimulus."""
    from bids_encoding.participant.datascaling import DataScaling
    from bids_encoding.plan import data_scaling_flop

    n, folds, p, v, alphas = 900, 3, 32, 1000, 4
    one = ridge_flop(300 * 2, p, v, 2, alphas) / 2  # 1 training stimulus and the test one
    two = ridge_flop(300 * 3, p, v, 3, alphas) / 3
    assert data_scaling_flop(DataScaling(draws=3), n, folds, p, v, alphas) == pytest.approx(3 * (3 * one + two))
    assert data_scaling_flop(None, n, folds, p, v, alphas) == 0
