"""Acoustic feature spaces from the stimulus audio (envelope, mel), where each run's audio is found, and word
vectors in HDF5 (Huth's English1000 layout)."""

import numpy as np
import pandas as pd
import pytest
from test_dependencies import hide, one_error_line

from bids_encoding.cli import main
from bids_encoding.errors import BadDataError, UsageError
from bids_encoding.features import FeatureCache, parse_model_spec
from bids_encoding.features.acoustic import FRAME_RATE, acoustic_features
from bids_encoding.features.baselines import baseline_features
from bids_encoding.participant.selection import check_feature_inputs

soundfile = pytest.importorskip("soundfile")

RATE = 16000
DURATION = 40.0


def modulation(times):
    """A slow envelope (0.25 Hz) with silent gaps: 2 s of silence every 10 s."""
    values = 0.55 + 0.45 * np.sin(2 * np.pi * 0.25 * times)
    return np.where(times % 10 >= 8, 0.0, values)


def write_tone(path, duration=DURATION, channels=2):
    """A 440 Hz tone amplitude-modulated by :func:`modulation`, as a 16-bit WAV file."""
    times = np.arange(int(duration * RATE)) / RATE
    signal = 0.5 * modulation(times) * np.sin(2 * np.pi * 440 * times)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.repeat(signal[:, None], channels, axis=1), RATE, subtype="PCM_16")
    return path


@pytest.fixture
def tone(tmp_path):
    return write_tone(tmp_path / "stimuli" / "tone.wav")


def test_the_specs_of_the_acoustic_spaces():
    envelope, mel, mel64 = (parse_model_spec(text) for text in ("envelope", "mel", "mel:64"))
    assert envelope.is_acoustic and envelope.is_baseline and envelope.dim == 1 and envelope.label == "envelope"
    assert mel.model_id == "mel:32" and mel.dim == 32 and mel.label == "mel32" and mel64.dim == 64
    assert not parse_model_spec("wordrate").is_acoustic
    for bad in ("mel:many", "mel:1", "envelope:3"):
        with pytest.raises(UsageError):
            parse_model_spec(bad)


def test_the_envelope_follows_the_modulation_and_the_mel_peak_holds_440_hz(tone, tmp_path):
    from bids_encoding.features.acoustic import mel_filterbank

    cache = FeatureCache(tmp_path / "cache")
    frames, envelope = acoustic_features(parse_model_spec("envelope"), tone, cache)
    assert envelope.shape == (int(DURATION * FRAME_RATE), 1) and envelope.dtype == np.float32
    np.testing.assert_allclose(frames["onset"], np.arange(len(frames)) / FRAME_RATE)
    assert (frames["duration"] == 1 / FRAME_RATE).all()
    truth = modulation(frames["onset"].to_numpy() + 0.5 / FRAME_RATE)  # the modulation at each frame's middle
    assert np.corrcoef(envelope[:, 0], truth)[0, 1] > 0.95
    assert envelope[truth == 0, 0].max() < 0.05 * envelope[:, 0].max()  # the gaps are silent

    frames, mel = acoustic_features(parse_model_spec("mel"), tone, cache)
    assert mel.shape == (len(frames), 32)
    sounding = truth > 0.5
    peak = np.bincount(mel[sounding].argmax(axis=1)).argmax()
    n_fft = 512  # a 25 ms window at 16 kHz (400 samples), padded to a power of two
    filters = mel_filterbank(RATE, n_fft, 32)
    frequencies = np.arange(n_fft // 2 + 1) * RATE / n_fft
    band = frequencies[filters[peak] > 0]
    assert band.min() < 440 < band.max()
    inside_gaps = (truth == 0) & (np.roll(truth, 1) == 0) & (np.roll(truth, -1) == 0)  # windows reach the tone
    assert inside_gaps.sum() > 40 and (mel[inside_gaps] <= -99).all()  # digital silence: the -100 dB floor


def test_the_cache_is_reused_and_keyed_by_the_audio_content(tone, tmp_path, monkeypatch):
    from bids_encoding.features import acoustic

    cache = FeatureCache(tmp_path / "cache")
    spec = parse_model_spec("mel:8")
    first = acoustic_features(spec, tone, cache)[1]
    assert (cache.hits, cache.misses) == (0, 1)
    monkeypatch.setattr(acoustic, "_blocks", lambda *args: pytest.fail("computed again"))
    again = acoustic_features(spec, tone, cache)[1]
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, again)
    entries = list((tmp_path / "cache" / "mel8").iterdir())
    assert len([entry for entry in entries if entry.is_dir()]) == 1
    monkeypatch.undo()
    write_tone(tone, duration=DURATION / 2)  # same path, other content: a new entry
    assert len(acoustic_features(spec, tone, cache)[1]) == int(DURATION / 2 * FRAME_RATE)
    assert cache.misses == 2


def test_an_unreadable_audio_file_is_named(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF not a sound")
    with pytest.raises(BadDataError, match="broken.wav"):
        acoustic_features(parse_model_spec("envelope"), path, FeatureCache(tmp_path / "cache"))


def test_the_audio_comes_from_the_events_stim_file(tmp_path):
    from bids_encoding.inputs.timings.spec import StimulusEntry, run_audio

    events = tmp_path / "sub-01_task-pieman_events.tsv"  # Narratives' events: blocks naming the audio
    events.write_text("onset\tduration\ttrial_type\tstim_file\n4.5\t13.0\tmusic\tpieman_audio.wav\n"
                      "17.5\t422.0\tstory\tpieman_audio.wav\n")
    assert run_audio(tmp_path, events) == (tmp_path / "stimuli" / "pieman_audio.wav", 4.5, "events.tsv stim_file")
    entry = StimulusEntry("x", "events", "events:story", audio="stimuli/{task}.wav")
    assert run_audio(tmp_path, events, entry, {"task": "pieman"}, 4.5)[0].name == "pieman_audio.wav"  # first
    two = tmp_path / "sub-01_task-schema_events.tsv"  # two stories in one run: no single audio
    two.write_text("onset\tduration\ttrial_type\tstim_file\n5\t185\tmovie\tn/a\n196.27\t179\tstory\tvinny.wav\n"
                   "576.18\t187\tstory\tupintheair.wav\n")
    assert run_audio(tmp_path, two) is None
    assert run_audio(tmp_path, two, entry, {"task": "schema"}, 3.0) == (
        tmp_path / "stimuli" / "vinny.wav", 196.27, "events.tsv stim_file")  # origin events:story: the first story


WORDS = [(12.0, 0.4, "once"), (12.5, 0.3, "upon"), (13.0, 0.2, "a"), (13.4, 0.5, "time")]


def tiny_bids(root, task="story", session=None, events=None, n_scans=40, repetition_time=2.0):
    """One participant, one run of ``task``: a small BOLD series, its TR, and ``events`` (rows) if given."""
    import json

    import nibabel as nib

    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny", "BIDSVersion": "1.8.0"}))
    (root / f"task-{task}_bold.json").write_text(json.dumps({"TaskName": task, "RepetitionTime": repetition_time}))
    folder = root / "sub-01" / (f"ses-{session}" if session else "") / "func"
    folder.mkdir(parents=True)
    stem = f"sub-01{f'_ses-{session}' if session else ''}_task-{task}"
    image = nib.Nifti1Image(np.random.default_rng(0).standard_normal((3, 3, 3, n_scans)).astype(np.float32),
                            np.eye(4))
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = repetition_time
    image.to_filename(folder / f"{stem}_bold.nii.gz")
    if events is not None:
        pd.DataFrame(events).to_csv(folder / f"{stem}_events.tsv", sep="\t", index=False, na_rep="n/a")
    return root


def word_events(stim_file=None):
    rows = [{"onset": onset, "duration": duration, "trial_type": "word", "word": word}
            for onset, duration, word in WORDS]
    if stim_file:  # a story block naming the audio, which starts at 1.5 s
        rows = [{"onset": 1.5, "duration": 60.0, "trial_type": "story", "word": None, "stim_file": stim_file}] + rows
    return rows


def _runs(root, tmp_path, *options):
    from bids_encoding.cli.parser import config_from_args, parse_args
    from bids_encoding.participant import collect_runs

    config = config_from_args(parse_args([str(root), str(tmp_path / "selected"), "participant",
                                          "--skip-bids-validation", *options]))
    return collect_runs(config)


def test_runs_find_their_audio_in_the_events_and_a_missing_one_is_refused(tmp_path, capsys):
    from dataclasses import replace

    root = tiny_bids(tmp_path / "bids", events=word_events("story_audio.wav"))
    write_tone(root / "stimuli" / "story_audio.wav", duration=15.0, channels=1)
    selected = _runs(root, tmp_path)
    (run,) = [run for runs in selected.values() for run in runs]
    assert run.audio == root / "stimuli" / "story_audio.wav" and run.audio_origin == 1.5
    assert run.origin == 0.0 and run.audio_source == "events.tsv stim_file" and len(run.words) == len(WORDS)
    check_feature_inputs([parse_model_spec("envelope")], selected)  # found and readable
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a sound")
    with pytest.raises(BadDataError, match="cannot read the audio file .*broken.wav"):
        check_feature_inputs([parse_model_spec("mel")], {("01", "story"): [replace(run, audio=broken)]})
    with pytest.raises(BadDataError, match="absent.wav .*does not exist.*datalad get"):
        absent = replace(run, audio=tmp_path / "absent.wav")
        check_feature_inputs([parse_model_spec("mel")], {("01", "story"): [absent]})

    bare = tiny_bids(tmp_path / "bare", events=word_events())
    code = main([str(bare), str(tmp_path / "out"), "participant", "--models", "envelope", "--skip-bids-validation"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 65 and "sub-01_task-story_events.tsv" in line and "stim_file" in line and "audio pattern" in line


def test_the_lebel_preset_finds_each_storys_audio_and_frames_go_on_the_scan_clock(tmp_path):
    from bids_encoding.design import DesignSettings
    from bids_encoding.stimuli import StimulusSequence
    from bids_encoding.synthetic.layouts import textgrid_text

    root = tiny_bids(tmp_path / "lebel", task="alternateithicatom", session="1", n_scans=24)  # no events.tsv
    grid = root / "derivative" / "TextGrids" / "alternateithicatom.TextGrid"
    grid.parent.mkdir(parents=True)
    grid.write_text(textgrid_text([("word", [(0, 2.0, "sp")] + [(onset - 10, onset - 10 + duration, word)
                                                                for onset, duration, word in WORDS])], end=5.0))
    write_tone(root / "stimuli" / "alternateithicatom.wav", duration=30.0)  # ds003020: stimuli/<story>.wav
    selected = _runs(root, tmp_path, "--stimuli", "lebel", "--trim-scans", "0", "0")
    (run,) = [run for runs in selected.values() for run in runs]
    assert run.audio == root / "stimuli" / "alternateithicatom.wav" and run.audio_source == "stimulus specification"
    assert run.audio_origin == run.origin == 10.0  # the sound starts 10 s into the scan

    stimulus = StimulusSequence.of_runs([run]).stimuli[0]
    assert stimulus.audio == run.audio and stimulus.audio_record["size"] == run.audio.stat().st_size
    frames, values = acoustic_features(parse_model_spec("envelope"), stimulus.audio, FeatureCache(tmp_path / "c"))
    on_scan = frames.assign(onset=frames["onset"] + run.audio_origin)
    np.testing.assert_allclose(on_scan["onset"], 10.0 + np.arange(len(frames)) / FRAME_RATE)
    matrix = DesignSettings().word_matrix(on_scan, run.n_scans, run.repetition_time)
    assert matrix.shape == (run.n_scans, len(frames))
    design = matrix @ values  # the envelope on the scans: nothing before the sound starts
    first = int(10.0 // run.repetition_time)
    assert not design[:first].any() and design[first + 2:first + 10].any()


def test_the_narratives_preset_takes_the_audio_of_the_events_at_the_origin(tmp_path):
    """Narratives: events.tsv blocks name stimuli/<story>_audio.wav, which starts with the music block; the
    gentle alignment counts from it, so the audio's first sample is at the run's origin."""
    events = [{"onset": 4.5, "duration": 13.0, "trial_type": "music", "stim_file": "pieman_audio.wav"},
              {"onset": 17.5, "duration": 40.0, "trial_type": "story", "stim_file": "pieman_audio.wav"}]
    root = tiny_bids(tmp_path / "narratives", task="pieman", events=events, n_scans=30)
    align = root / "stimuli" / "gentle" / "pieman" / "align.csv"
    align.parent.mkdir(parents=True)
    align.write_text("".join(f"{word},{word},{onset + 3:.2f},{onset + 3 + duration:.2f}\n"
                             for onset, duration, word in WORDS))
    selected = _runs(root, tmp_path, "--stimuli", "narratives", "--trim-scans", "0", "0")
    (run,) = [run for runs in selected.values() for run in runs]
    assert run.audio == root / "stimuli" / "pieman_audio.wav" and run.audio_source == "events.tsv stim_file"
    assert run.audio_origin == run.origin == 4.5


def test_the_lpp_preset_names_each_languages_audio():
    from bids_encoding.inputs.timings.spec import StimulusSpec, run_audio

    spec = StimulusSpec.load("lpp")
    names = {lang: run_audio("ds", None, spec.entry_for({"task": f"lpp{lang}"}), {"task": f"lpp{lang}", "rank": 3},
                             0.0)[0].as_posix() for lang in ("EN", "FR", "CN")}
    assert names == {"EN": "ds/stimuli/task-lppEN_section-3.wav", "FR": "ds/stimuli/task-lppFR_section_3.wav",
                     "CN": "ds/stimuli/task-lppCN_section_3.wav"}  # ds003643's own file names


def test_soundfile_missing_says_which_extra(tmp_path, monkeypatch, capsys):
    hide(monkeypatch, "soundfile")
    code = main([str(tiny_bids(tmp_path / "bids")), str(tmp_path / "out"), "participant", "--models", "mel"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "soundfile" in line and "pip install 'bids_encoding[acoustic]'" in line


def english1000(path, rows_are_words=False):
    """A small file in the layout of LeBel et al.'s english1000sm.hf5: ``data`` (dim x n_words), ``vocab`` (bytes)."""
    h5py = pytest.importorskip("h5py")
    vocab = [b"the", b"cat", b"don't", b"sat"]
    data = np.arange(20, dtype=np.float64).reshape(5, 4) / 10  # 5 dimensions, one column per word
    with h5py.File(path, "w") as hdf:
        hdf["data"] = data.T if rows_are_words else data
        hdf["vocab"] = np.array(vocab)
    return path, data


def test_english1000_vectors_from_an_hdf5_file(tmp_path):
    path, data = english1000(tmp_path / "english1000sm.hf5")
    spec = parse_model_spec(f"vectors:{path}")
    assert spec.dim == 5 and spec.label == "vectorsenglish1000sm"
    features = baseline_features(spec, ["The", "cat,", "dog", "Don't"])[0]
    np.testing.assert_allclose(features[0], data[:, 0], rtol=1e-6)
    np.testing.assert_allclose(features[1], data[:, 1], rtol=1e-6)  # punctuation stripped
    assert not features[2].any()  # out of the vocabulary: zeros
    np.testing.assert_allclose(features[3], data[:, 2], rtol=1e-6)
    rows, _ = english1000(tmp_path / "rows.h5", rows_are_words=True)
    np.testing.assert_allclose(baseline_features(parse_model_spec(f"vectors:{rows}"), ["sat"])[0][0], data[:, 3],
                               rtol=1e-6)
    import h5py

    with h5py.File(tmp_path / "other.hf5", "w") as hdf:
        hdf["vectors"] = data
    with pytest.raises(BadDataError, match="other.hf5: .*'data'.*'vocab'"):
        parse_model_spec(f"vectors:{tmp_path / 'other.hf5'}")


def test_h5py_missing_says_which_extra(tmp_path, monkeypatch, capsys):
    path, _ = english1000(tmp_path / "english1000sm.hf5")
    hide(monkeypatch, "h5py")
    code = main([str(tiny_bids(tmp_path / "bids")), str(tmp_path / "out"), "participant", "--models",
                 f"vectors:{path}"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "pip install 'bids_encoding[english1000]'" in line


def test_an_acoustic_space_is_fitted_from_the_generated_sound(tmp_path, tiny_model):
    """The generator's sound (audio=True, a stim_file row per run): --models envelope reaches the fits."""
    from bids_encoding.cli import main
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, audio=True)
    output_dir = tmp_path / "out"
    assert main([str(tmp_path / "bids"), str(output_dir), "participant", "--models", "envelope", "--device", "cpu",
                 "--pvalue-method", "none"]) == 0
    assert (output_dir / "sub-01" / "func" /
            "sub-01_task-story_space-orig_model-envelope_layer-best_stat-r_statmap.nii.gz").is_file()
