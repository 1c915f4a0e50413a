"""``bids_encoding demo``: dataset, ground truth and results in one folder."""

import json
import re

import numpy as np
import pandas as pd

from bids_encoding.cli import main
from bids_encoding.synthetic import story_runs


def test_story_timings_are_realistic():
    runs = story_runs(4)
    assert len(runs) == 4
    for words in runs:
        assert (words["trial_type"] == "word").all()
        assert (np.diff(words["onset"]) > 0).all()
        assert (words["onset"].iloc[1:].to_numpy() >= (words["onset"] + words["duration"]).iloc[:-1].to_numpy()).all()
        rate = len(words) / (words["onset"].iloc[-1] - words["onset"].iloc[0])
        assert 2.2 < rate < 2.8
        after_period = words["onset"].diff().shift(-1)[words["word"].str.endswith(".")].median()
        assert after_period > words["onset"].diff().median() + 0.3  # pauses at sentence ends


def test_demo_command(tmp_path, tiny_model, capsys):
    code = main(["demo", str(tmp_path / "demo"), "--model", str(tiny_model), "--participants", "2",
                 "--device", "cpu", "--compare", "wordrate"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0
    for own_warning in ("not a TemplateFlow template", "not a template space", "no TemplateFlow brain mask",
                        "covers less than"):
        assert own_warning not in captured.err  # the demo's space is declared, its masks shipped
    assert "planted left" in out and str(tmp_path / "demo" / "derivatives" / "bids_encoding") in out
    truth = json.loads((tmp_path / "demo" / "ground_truth" / "ground_truth.json").read_text())
    assert truth["model"] == str(tiny_model) and truth["n_participants"] == 2
    participants = pd.read_csv(tmp_path / "demo" / "bids" / "participants.tsv", sep="\t")
    assert list(participants["participant_id"]) == ["sub-01", "sub-02"]
    assert len(list((tmp_path / "demo" / "derivatives" / "bids_encoding").glob("sub-*/func/*_scores.tsv"))) == 2
    surface = re.findall(r"^sub-\d+: on the cortical surface \(fsaverage5\), best-layer mean r  planted left sphere "
                         r"(\S+)  elsewhere (\S+)$", out, flags=re.M)
    assert len(surface) == 2 and all(float(planted) > float(elsewhere) + 0.1 for planted, elsewhere in surface)
    group = tmp_path / "demo" / "derivatives" / "bids_encoding" / "group"
    assert list(group.glob("*_hemi-L_*_stat-t_statmap.func.gii"))
    group_line = next(line for line in out.splitlines() if line.startswith("group "))
    assert float(group_line.split("L-R ")[1].split()[0]) > 0  # the left-planted asymmetry


def test_speech_demo_on_the_narratives_replica(tmp_path, tiny_model, capsys, monkeypatch):
    """``demo --speech --layout narratives``: the sound after Narratives' music, where each participant's events
    say it starts; the planted speech response recovered in the auditory spheres by the speech model that planted
    it; the group fits the speech models' law apart from the language models' (its own slope map and figure), the
    training-data law, and the report shows both."""
    import pytest

    pytest.importorskip("soxr")
    from conftest import validator_errors

    monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", "0")
    code = main(["demo", str(tmp_path / "demo"), "--speech", "--layout", "narratives", "--model", str(tiny_model),
                 "--participants", "2", "--runs", "3", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    planted = [line for line in out.splitlines() if "hubert-small best-layer" in line]
    assert len(planted) == 2  # sub-001 and sub-002: the sound starts 0 and 4.5 s into their runs
    for line in planted:
        inside, elsewhere = (float(part.split()[0]) for part in line.split("spheres ")[1].split("elsewhere "))
        assert inside > 0.5 and abs(elsewhere) < 0.05
    assert "training-data law" in out
    output = tmp_path / "demo" / "derivatives" / "bids_encoding"
    group = output / "group"
    prefix = "task-narratives_space-MNI152NLin2009cAsym"
    assert not (group / f"{prefix}_stat-slope_statmap.nii.gz").exists()  # one language model: no language law
    speech_slope = json.loads((group / f"{prefix}_desc-speech_stat-slope_statmap.json").read_text())
    assert sorted(speech_slope["Models"]) == sorted(str(tmp_path / "demo" / "models" / name)
                                                    for name in ("hubert-small", "hubert-tiny"))
    figures = {path.name.split("desc-")[1].split("_")[0] for path in (group / "figures").glob("*.svg")}
    assert {"speechscaling", "datascaling"} <= figures and "scaling" not in figures
    report = (output / "group.html").read_text()
    assert "Speech models: score against model size" in report and "Training data" in report
    assert validator_errors(output) == []
