"""Replicas of the reference datasets' layouts (LeBel, Narratives, Le Petit Prince): the documented command
recovers the planted response, and each dataset's trap (time origin, run order) fails on the replica."""

import json

import pytest
from conftest import bidsignore_patterns_used, validator_errors

from bids_encoding.cli import main
from bids_encoding.cli.demo import recovery_summary
from bids_encoding.features.models import model_label
from bids_encoding.synthetic import generate_dataset

FAST = ["--device", "cpu", "--pvalue-method", "none"]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, tiny_model):
    """One replica per layout, three stories each; Narratives and Le Petit Prince with two participants."""
    roots = {}
    for layout, participants, tr in (("lebel", 1, 2.0), ("narratives", 2, 1.5), ("lpp", 2, 2.0)):
        root = tmp_path_factory.mktemp(layout)
        generate_dataset(root, str(tiny_model), n_participants=participants, n_runs=3, repetition_time=tr,
                         layout=layout, seed=2)
        roots[layout] = root
    return roots


def _run(root, tmp_path, tiny_model, *options):
    output_dir = tmp_path / "out"
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), *FAST, *options])
    recovered = recovery_summary(output_dir, root / "ground_truth", model_label(str(tiny_model))) if code == 0 else {}
    if code == 0:
        assert not validator_errors(output_dir)  # every layout's output is valid BIDS-Derivatives
    return code, recovered, output_dir


def _sidecar_runs(output_dir):
    path = next(output_dir.glob("sub-*/func/*_layer-best_stat-r_statmap.json"))
    return json.loads(path.read_text())["Runs"]


def test_lebel_preset_recovers_the_planted_response(replicas, tmp_path, tiny_model):
    code, recovered, output_dir = _run(replicas["lebel"], tmp_path, tiny_model, "--stimuli", "lebel")
    assert code == 0
    assert recovered["sub-UTS01"]["left"] > 0.25 > abs(recovered["sub-UTS01"]["null"])
    runs = _sidecar_runs(output_dir)
    assert [run["Words"]["Origin"] for run in runs] == [10.0] * 3
    assert {run["Task"] for run in runs} == {"alternateithicatom", "souls", "avatar"}  # one task per story, pooled
    assert all(run["Words"]["Dropped"] > 0 for run in runs)  # sp, {br}, sentence marks
    assert list(output_dir.glob("sub-UTS01/func/sub-UTS01_task-lebel_*_scores.tsv"))


def test_lebel_trap_forgetting_the_10_s_offset_fails_recovery(replicas, tmp_path, tiny_model):
    spec = tmp_path / "no_offset.toml"
    spec.write_text('label = "lebel"\ncv_unit = "stimulus"\n[[stimulus]]\ntask = "*"\n'
                    'annotation = "derivative/TextGrids/{task}.TextGrid"\nformat = "textgrid"\norigin = 0\n')
    code, recovered, _ = _run(replicas["lebel"], tmp_path, tiny_model, "--stimuli", str(spec))
    assert code == 0 and recovered["sub-UTS01"]["left"] < 0.12


def test_narratives_preset_takes_the_audio_file_onset_per_participant(replicas, tmp_path, tiny_model):
    """Also fMRIPrep 20.0's derivatives: its brain masks and its desc-confounds_regressors.tsv (CompCor read
    through the JSON)."""
    code, recovered, output_dir = _run(replicas["narratives"], tmp_path, tiny_model, "--stimuli", "narratives",
                                       "--confounds", "motion", "wm_csf", "compcor", "high_pass", "--motion", "basic")
    assert code == 0
    for subject, music_onset in (("sub-001", 0.0), ("sub-002", 4.5)):
        assert recovered[subject]["left"] > 0.25
        sidecar = next(output_dir.glob(f"{subject}/func/*_layer-best_stat-r_statmap.json"))
        runs = json.loads(sidecar.read_text())["Runs"]
        assert [run["Words"]["Origin"] for run in runs] == [music_onset] * 3  # the music block, not the story
        assert all(run["Bold"].startswith(f"derivatives/fmriprep/{subject}/func/") and "_res-native_desc-preproc_"
                   in run["Bold"] for run in runs)  # fMRIPrep 20.0 names, not the raw series
        assert all(run["Words"]["Interpolated"] > 0 for run in runs)  # words gentle did not find
        confounds = [run["Confounds"] for run in runs]
        assert all(c["File"].endswith("_desc-confounds_regressors.tsv") for c in confounds)
        assert {"trans_x", "csf", "white_matter", "a_comp_cor_00", "cosine00"} <= set(confounds[0]["Columns"])
        assert "trans_x_derivative1" not in confounds[0]["Columns"]  # --motion basic
        assert json.loads(sidecar.read_text())["BOLD"]["Mask"]["Source"] == "derivative"


def test_narratives_trap_adding_times_to_the_story_onset_fails(replicas, tmp_path, tiny_model, capsys):
    spec = tmp_path / "story_onset.toml"
    spec.write_text('label = "narratives"\ncv_unit = "stimulus"\n[[stimulus]]\ntask = "*"\n'
                    'annotation = "stimuli/gentle/{task}/align.csv"\nformat = "gentle-csv"\n'
                    'origin = "events-row:story"\n')
    code, recovered, _ = _run(replicas["narratives"], tmp_path, tiny_model, "--stimuli", str(spec),
                              "--participant-label", "001")
    err = capsys.readouterr().err
    assert (code == 65 and "do not fit their scans" in err) or (code == 0 and recovered["sub-001"]["left"] < 0.12)


def test_lpp_preset_uses_the_preprocessed_bold_and_matches_sections_to_run_ranks(replicas, tmp_path, tiny_model,
                                                                                  capsys):
    code, recovered, output_dir = _run(replicas["lpp"], tmp_path, tiny_model, "--stimuli", "lpp",
                                       "--participant-label", "EN058")
    assert code == 0 and recovered["sub-EN058"]["left"] > 0.25
    err = capsys.readouterr().err
    assert "has no dataset_description.json" in err
    assert "covers less than 90% of language ROI(s) TP_L" in err  # the synthetic brain cuts the temporal pole
    mask_sidecar = json.loads(next(output_dir.glob("sub-EN058/func/*_desc-brain_mask.json")).read_text())
    assert mask_sidecar["LanguageROICoverage"]["pSTS_L"] == 1.0 and mask_sidecar["LanguageROICoverage"]["TP_L"] < 0.9
    runs = _sidecar_runs(output_dir)
    assert [run["Bold"] for run in runs] == [
        f"derivatives/sub-EN058/func/sub-EN058_task-lppEN_run-{k}_space-MNIColin27_desc-preproc_bold.nii.gz"
        for k in ("01", "04", "05")]  # the aborted run-02 has no preprocessed series; run-03 does not exist
    assert [run["Words"]["Rank"] for run in runs] == [1, 2, 3] and runs[0]["RepetitionTime"] == 2.0
    assert {run["RepetitionTimeFrom"] for run in runs} == {"sidecar"}  # the raw echo-1 sidecar, not the header
    assert runs[0]["Words"]["LeftOut"] == ["sub-EN058_task-lppEN_run-02_echo-1_bold.nii.gz"]  # logged too
    assert list(output_dir.glob("sub-EN058/func/*_space-MNIColin27_scores.tsv"))


def test_lpp_raw_multi_echo_without_derivatives_names_what_to_run(replicas, tmp_path, tiny_model, capsys):
    import shutil

    bids = tmp_path / "bids"
    shutil.copytree(replicas["lpp"] / "bids", bids, ignore=shutil.ignore_patterns("derivatives"))
    code = main([str(bids), str(tmp_path / "out"), "participant", "--models", str(tiny_model), "--stimuli", "lpp",
                 *FAST])
    err = capsys.readouterr().err
    assert code == 65 and "echo" in err and "tedana" in err and "me-output-echos" in err


def test_aborted_runs_are_left_out_of_the_ranks(tmp_path):
    """Raw runs of a few dozen volumes among full ones (Le Petit Prince) do not take a section."""
    from bids_encoding.inputs.layout import Run, drop_aborted

    runs = [Run("01", "lppEN", tmp_path / f"run-{k}.nii.gz", None, 2.0, scans, None, run=str(k))
            for k, scans in ((1, 300), (2, 24), (4, 310), (5, 290))]
    kept, skipped = drop_aborted(runs, 0.5)
    assert [r.run for r in kept] == ["1", "4", "5"] and [r.run for r in skipped] == ["2"]


def test_lpp_trap_run_labels_as_sections_fails(replicas, tmp_path, tiny_model, capsys):
    spec = tmp_path / "run_labels.toml"
    spec.write_text('[[stimulus]]\ntask = "lppEN"\nannotation = "annotation/EN/lppEN_word_information.csv"\n'
                    'format = "lpp-csv"\noptions = { section = "{run}" }\n')
    code, _, _ = _run(replicas["lpp"], tmp_path, tiny_model, "--stimuli", str(spec), "--participant-label",
                      "EN057")
    assert code == 65 and "no words of section 15" in capsys.readouterr().err


def test_unknown_preset_or_missing_annotation_is_a_clear_error(replicas, tmp_path, tiny_model, capsys):
    code, _, _ = _run(replicas["lebel"], tmp_path, tiny_model, "--stimuli", "lebel2")
    assert code == 66 and "neither a preset" in capsys.readouterr().err
    code, _, _ = _run(replicas["lpp"], tmp_path, tiny_model, "--stimuli", "lebel")
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("bids_encoding: error:")]
    assert code == 66 and len(errors) == 1 and "TextGrids/lppEN.TextGrid" in errors[0] and "Traceback" not in err


def test_words_level_writes_bids_events_that_participant_reads_back(replicas, tmp_path, tiny_model):
    import pandas as pd

    from bids_encoding.inputs.timings import read_timings

    root = replicas["lebel"]
    words_dir = tmp_path / "words"
    assert main([str(root / "bids"), str(words_dir), "words", "--stimuli", "lebel"]) == 0
    assert not validator_errors(words_dir)
    used = bidsignore_patterns_used(words_dir, tmp_path)
    assert used is None or {"/words.tsv", "/words.json"} <= used
    summary = pd.read_csv(words_dir / "words.tsv", sep="\t")
    assert list(summary["origin_s"]) == [10.0] * 3 and (summary["words"] > 300).all()
    events = pd.read_csv(words_dir / "sub-UTS01" / "ses-1" / "func" /
                         "sub-UTS01_ses-1_task-alternateithicatom_events.tsv", sep="\t")
    textgrid = read_timings(root / "bids" / "derivative" / "TextGrids" / "alternateithicatom.TextGrid",
                            "textgrid").words
    assert list(events["word"]) == list(textgrid["word"])
    assert (events["onset"] - textgrid["onset"]).round(3).eq(10.0).all()
    assert json.loads((words_dir / "sub-UTS01" / "ses-1" / "func" /
                       "sub-UTS01_ses-1_task-alternateithicatom_events.json").read_text())["Words"]["Origin"] == 10.0
    code, recovered, output_dir = _run(root, tmp_path, tiny_model, "--stimuli", str(words_dir))
    assert code == 0 and recovered["sub-UTS01"]["left"] > 0.25
    assert list(output_dir.glob("sub-UTS01/func/sub-UTS01_task-lebel_*_scores.tsv"))  # pooled, as recorded
