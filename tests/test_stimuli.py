"""Stimuli of runs: what makes two runs the same stimulus, and the order of runs."""

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from bids_encoding.stimuli import StimulusSequence, run_stimuli, stimulus_groups


def fake_run(words, start=0.0):
    frame = pd.DataFrame({"onset": start + 0.5 * pd.RangeIndex(len(words)), "duration": 0.3, "word": words})
    return SimpleNamespace(words=frame, bold_path=Path("x_bold.nii.gz"))


STORIES = {name: fake_run([f"{name}{i}" for i in range(6)]) for name in "ABC"}


def test_continuous_context_keeps_repeats_of_a_story_together():
    """Runs A, B, A, C, A: the three presentations of A are one stimulus, with or without --continuous-context
    (cross-validation groups and noise ceilings), while their features differ by context (cache key)."""
    runs = [STORIES[name] for name in "ABACA"]
    for continuous in (False, True):
        stimuli = run_stimuli(runs, continuous)
        assert stimulus_groups([s.fingerprint for s in stimuli]) == [[0, 2, 4], [1], [3]]
    plain = run_stimuli(runs, False)
    assert len({s.cache_key for s in plain}) == 3
    continued = run_stimuli(runs, True)
    assert len({s.cache_key for s in continued}) == 5  # A after B, A after C: other context, other features
    assert continued[2].context_words == tuple(STORIES["B"].words["word"])
    assert continued[4].context_words == tuple(STORIES["C"].words["word"])
    sequence = StimulusSequence.of_runs(runs, continuous=True)
    assert sequence.repeated_groups == [[0, 2, 4]] and sequence.repeated_folds == [0]


def test_runs_are_ordered_by_number(tmp_path, tiny_model):
    """run-10 comes after run-9, not after run-1 (context continues from, and validation takes, the right run)."""
    from bids_encoding.inputs import load_layout, select_runs
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=11, seed=2)
    layout = load_layout(tmp_path / "bids", tmp_path / "index")
    runs = select_runs(layout, "01")["story"]
    assert [int(run.run) for run in runs] == list(range(1, 12))
    assert runs[9].bold_path.name == "sub-01_task-story_run-10_bold.nii.gz"


def test_selected_runs_are_complete_and_frozen(tmp_path, tiny_model):
    """select_runs is the only writer of a run: what it returns has its words, and a later stage that finds
    something in a run makes a new one (with_notes) instead of changing it."""
    import dataclasses

    import pytest

    from bids_encoding.inputs import load_layout, select_runs
    from bids_encoding.inputs.layout import with_notes
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=2, seed=3)
    run = select_runs(load_layout(tmp_path / "bids", tmp_path / "index"), "01")["story"][0]
    assert run.words is not None and len(run.words) > 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.confounds = object()
    noted = with_notes(run, ["3 voxel(s) constant over the run (they score 0)"] * 2)
    assert noted.notes == run.notes + ("3 voxel(s) constant over the run (they score 0)",) and noted is not run
    assert with_notes(noted, noted.notes) is noted
