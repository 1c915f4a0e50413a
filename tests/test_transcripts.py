"""Original transcripts (--transcripts, the specification's ``transcript``): the alignment of a transcript to the
timed words, the planted response of the punctuated text recovered better with it, the Narratives replica's
transcript.txt through the preset, the words level's alignment report, and bad transcripts."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import bidsignore_patterns_used, validator_errors

from bids_encoding.cli import main
from bids_encoding.inputs.transcripts import align_transcript
from bids_encoding.synthetic import generate_dataset
from bids_encoding.synthetic.story import STORY
from bids_encoding.synthetic.transcript import perturb_transcript, timed_spelling


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_transcript_with_errors_maps_the_timed_words_to_their_own_words(seed):
    """5% of the transcript's words have a typo, are split, merged with the next or dropped: at least 98% of the
    2,000 timed words (lower case, no punctuation) still take exactly the transcript words made from them."""
    words = (STORY.split() * 2)[:2000]
    timed = [timed_spelling(word) for word in words]
    transcript, origin = perturb_transcript(words, 0.05, np.random.default_rng(seed))
    assert transcript != words
    alignment = align_transcript(transcript, timed)
    right = np.mean([taken == made for taken, made in zip(alignment.transcript_indices, origin)])
    assert right >= 0.98
    assert len(alignment.read_words) >= len(transcript)  # every transcript word read, deletions added
    for (first, last), kind, word in zip(alignment.word_ranges, alignment.kinds, timed):
        if kind == "deletion":
            assert first == last and alignment.read_words[first] == word  # read with its own spelling


def test_numbers_contractions_hyphens_and_split_words_are_aligned():
    transcript = 'In 1943, the well-known captain said: "Don\'t go — 42 ships are lost."'.split()
    timed = ["in", "nineteen", "forty", "three", "the", "well", "known", "captain", "said", "don't", "go", "forty",
             "two", "ships", "are", "lost"]
    alignment = align_transcript(transcript, timed)
    taken = [" ".join(transcript[i] for i in indices) for indices in alignment.transcript_indices]
    assert taken == ["In", "1943,", "1943,", "1943,", "the", "well-known", "well-known", "captain", "said:",
                     '"Don\'t', "go", "42", "42", "ships", "are", "lost.\""]
    assert alignment.match_rate == 1.0 and alignment.n_inserted == 0
    assert "—" in alignment.read_words  # punctuation alone is read, never aligned


def _left_r(output_dir, subject="01"):
    labels = None
    for path in output_dir.glob(f"sub-{subject}/func/*_layer-best_stat-r_statmap.nii.gz"):
        labels = nib.load(output_dir.parent / "ground_truth" / "planted_labels.nii.gz")
        return float(np.asarray(nib.load(path).dataobj)[np.asarray(labels.dataobj) == 1].mean())
    raise AssertionError(f"no best-layer r map in {output_dir}")


def test_the_planted_response_of_the_punctuated_text_is_recovered_better_with_it(tmp_path, tiny_model):
    """The response is planted from the features of the story as written; the timings spell its words in lower
    case without punctuation. Reading the transcript recovers the left sphere's response better by far."""
    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, transcript=True)
    events = pd.read_csv(tmp_path / "bids" / "task-story_run-1_events.tsv", sep="\t")
    assert events["word"].str.fullmatch(r"[a-z0-9']+").all()
    arguments = [str(tmp_path / "bids"), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--pvalue-method", "none"]
    assert main([arguments[0], str(tmp_path / "without"), *arguments[1:]]) == 0
    assert main([arguments[0], str(tmp_path / "with"), *arguments[1:], "--transcripts",
                 str(tmp_path / "transcripts")]) == 0
    without, with_transcript = _left_r(tmp_path / "without"), _left_r(tmp_path / "with")
    assert with_transcript > without + 0.15
    sidecar = json.loads(next((tmp_path / "with" / "sub-01" / "func").glob("*_layer-best_stat-r_statmap.json"))
                         .read_text())
    record = sidecar["Runs"][0]["Words"]["Transcript"]
    assert record["MatchRate"] == 1.0 and record["File"].endswith("task-story_run-1.txt")
    from bids_encoding.reports.boilerplate import methods

    assert "original transcript of each story" in methods([sidecar])[0]


def test_the_narratives_replica_is_read_with_its_transcript_through_the_preset(tmp_path, tiny_model):
    """Narratives' ``stimuli/gentle/<story>/transcript.txt`` beside align.csv (words not found in the audio,
    ``<unk>`` words): the preset finds it, the words level reports the alignment, the fit reads it."""
    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, layout="narratives", transcript=True)
    bids = tmp_path / "bids"
    assert (bids / "stimuli" / "gentle" / "pieman" / "transcript.txt").is_file()
    words_out = tmp_path / "words"
    assert main([str(bids), str(words_out), "words", "--stimuli", "narratives"]) == 0
    summary = pd.read_csv(words_out / "words.tsv", sep="\t")
    assert (summary["transcript_match"] >= 0.95).all()
    report = next(words_out.glob("**/sub-001_task-pieman_*_alignment.tsv"))
    table = pd.read_csv(report, sep="\t")
    assert set(table["kind"]) <= {"match", "substitution", "deletion", "insertion"}
    assert (table["kind"] == "match").mean() > 0.9
    assert json.loads(report.with_suffix(".json").read_text())["MatchRate"] >= 0.95
    assert validator_errors(words_out) == []
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--stimuli", "narratives", "--models", str(tiny_model),
                 "--device", "cpu", "--pvalue-method", "none"]) == 0
    assert _left_r(out, "001") > 0.3


def test_the_lebel_replica_with_transcripts_given_by_the_user(tmp_path, tiny_model):
    """LeBel et al. ship no transcripts: ``--transcripts DIR`` with ``<story>.txt``; the words level writes each
    run's alignment beside its events, and the outputs stay valid BIDS."""
    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=2, layout="lebel", transcript=True)
    words_out = tmp_path / "words"
    assert main([str(tmp_path / "bids"), str(words_out), "words", "--stimuli", "lebel", "--transcripts",
                 str(tmp_path / "transcripts")]) == 0
    tables = sorted(words_out.glob("sub-UTS01/ses-*/func/*_alignment.tsv"))
    assert [path.name.split("task-")[1] for path in tables] == ["alternateithicatom_alignment.tsv",
                                                               "souls_alignment.tsv"]
    assert (pd.read_csv(words_out / "words.tsv", sep="\t")["transcript_match"] == 1.0).all()
    assert validator_errors(words_out) == []
    assert {"*_alignment.tsv", "*_alignment.json"} <= bidsignore_patterns_used(words_out, tmp_path / "check")


def test_a_transcript_of_another_text_stops_with_its_match_rate(tmp_path, tiny_model, capsys):
    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, transcript=True)
    other = tmp_path / "transcripts" / "task-story_run-2.txt"
    other.write_text(" ".join(reversed(other.read_text().split())))
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--transcripts", str(tmp_path / "transcripts")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 65 and "task-story_run-2.txt: only" in err[-1] and "--transcript-min-match 0.9" in err[-1]
    assert not (tmp_path / "out" / "sub-01").exists()
    (tmp_path / "transcripts" / "task-story_run-3.txt").unlink()
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--transcripts", str(tmp_path / "transcripts"), "--transcript-min-match", "0.1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 65 and "has no transcript for sub-01_task-story_run-3_bold.nii.gz" in err[-1]
