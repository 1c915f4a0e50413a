"""Speech-model features (HuBERT, WavLM, Whisper) from tiny random models built from transformers configs: the
window mode against a frame-by-frame computation, causality, Whisper's last frame, the chunked mode, the cache,
bad audio, and a fit end to end."""

import numpy as np
import pytest

pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from bids_encoding.errors import BadDataError  # noqa: E402
from bids_encoding.features import FeatureCache, parse_model_spec  # noqa: E402
from bids_encoding.features.speech import (  # noqa: E402
    MODEL_RATE,
    SpeechModel,
    SpeechSettings,
    chunked_states,
    frame_ends,
    is_speech_config,
    read_speech_audio,
    speech_features,
    window_states,
)
from bids_encoding.synthetic.speech_model import SPEECH_KINDS, build_speech_model  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    return {kind: build_speech_model(root / f"tiny{kind}", kind) for kind in SPEECH_KINDS}


def sound(seconds, seed=0, rate=MODEL_RATE):
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * time) * (1 + np.sin(2 * np.pi * 0.7 * time))
            + 0.05 * rng.standard_normal(len(time))).astype(np.float32)


def load(folder):
    return SpeechModel.load(parse_model_spec(str(folder)))


def test_speech_models_are_recognised_from_their_config(models, tiny_model):
    from transformers import AutoConfig

    assert all(is_speech_config(AutoConfig.from_pretrained(folder)) for folder in models.values())
    assert not is_speech_config(AutoConfig.from_pretrained(tiny_model))


@pytest.mark.parametrize("kind", ["hubert", "wavlm"])
def test_window_mode_is_each_frames_own_causal_window(models, kind):
    """Frame i's state is the last output frame of the model run on [max(0, t - 16.1 s), t) alone (t its end),
    computed here one window at a time with transformers' own feature extractor; batching changes nothing."""
    import torch
    from transformers import AutoFeatureExtractor, AutoModel

    samples = sound(2.0)
    settings = SpeechSettings(context=0.5, batch_size=4)
    ours = window_states(load(models[kind]), samples, settings)
    model, extractor = AutoModel.from_pretrained(models[kind]).eval(), AutoFeatureExtractor.from_pretrained(
        models[kind])
    ends = frame_ends(len(samples), settings)
    assert ours.shape == (3, len(ends), 16) and len(ends) == 20
    for i, end in enumerate(ends):
        window = samples[max(0, end - int(0.6 * MODEL_RATE)):end]
        inputs = extractor(window, sampling_rate=MODEL_RATE, return_tensors="pt")
        with torch.no_grad():
            hidden = model(inputs["input_values"], output_hidden_states=True).hidden_states
        np.testing.assert_allclose(ours[:, i], np.stack([h[0, -1].numpy() for h in hidden]), atol=2e-5)


def test_window_mode_is_causal(models):
    """Changing the sound after t leaves every frame that ends by t unchanged."""
    speech, settings = load(models["hubert"]), SpeechSettings(context=0.5)
    samples = sound(2.0)
    changed = samples.copy()
    changed[int(1.25 * MODEL_RATE):] = sound(0.75, seed=5)
    before, after = window_states(speech, samples, settings), window_states(speech, changed, settings)
    ends = frame_ends(len(samples), settings)
    early = ends <= int(1.25 * MODEL_RATE)
    np.testing.assert_array_equal(before[:, early], after[:, early])
    assert np.abs(before[:, ~early] - after[:, ~early]).max() > 1e-3


def test_whisper_takes_the_last_encoder_frame_the_audio_reaches(models):
    """Whisper pads every input to 30 s: the frame kept is the last one the snippet reaches through the two
    convolutions, not the padded end; it moves one encoder frame (20 ms) per 20 ms of audio."""
    speech = load(models["whisper"])
    assert speech._whisper_last_frame(_mask(1.0)) == 50
    assert speech._whisper_last_frame(_mask(1.02)) == 51
    states = window_states(speech, sound(0.6), SpeechSettings(context=0.3, batch_size=3))
    assert states.shape == (3, 6, 16) and np.isfinite(states).all()
    assert np.abs(np.diff(states[-1], axis=0)).max() > 1e-4  # each frame its own state


def _mask(seconds):
    import torch

    mask = torch.zeros(3000, dtype=torch.int64)
    mask[:int(seconds * 100)] = 1
    return mask


def test_chunked_mode_keeps_the_output_frame_ending_with_each_frame(models):
    """One pass over the whole sound: frame i's state is the model's output frame k = (t - 400) // 320 (its
    receptive field ends by t); the window mode differs (it sees no future), most where the window is short."""
    speech = load(models["hubert"])
    samples = sound(3.0)
    settings = SpeechSettings(mode="chunked", context=16.0, chunk=10.0)
    chunked = chunked_states(speech, samples, settings)
    whole = speech.sequence_states(samples)
    ends = frame_ends(len(samples), settings)
    np.testing.assert_allclose(chunked, whole[:, (ends - 400) // 320], atol=1e-5)
    windowed = window_states(speech, samples, SpeechSettings(context=16.0))
    assert chunked.shape == windowed.shape
    assert not np.allclose(chunked, windowed, atol=1e-3)


def test_features_go_through_the_cache_keyed_by_the_audio(models, tmp_path):
    import soundfile

    path = tmp_path / "story.wav"
    soundfile.write(path, sound(1.0, rate=22050), 22050)  # resampled to 16 kHz by soxr
    spec, cache = parse_model_spec(str(models["hubert"])), FeatureCache(tmp_path / "cache")
    calls = []

    def loader():
        calls.append(1)
        return load(models["hubert"])

    settings = SpeechSettings(context=0.5)
    frames, values = speech_features(loader, spec, path, settings, [0, 2], cache, "float32")
    assert list(values) == [0, 2] and values[2].shape == (10, 16) and len(frames) == 10
    np.testing.assert_allclose(frames["onset"], np.arange(10) / 10)
    again = speech_features(loader, spec, path, settings, [0, 2], cache, "float32")[1]
    assert len(calls) == 1 and np.array_equal(again[2], values[2])
    soundfile.write(path, sound(1.0, seed=3, rate=22050), 22050)
    speech_features(loader, spec, path, settings, [2], cache, "float32")
    assert len(calls) == 2


def test_multichannel_and_unreadable_audio_are_refused(tmp_path):
    import soundfile

    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((1600, 2), np.float32), MODEL_RATE)
    with pytest.raises(BadDataError, match="stereo.wav has 2 channels.*mix it down"):
        read_speech_audio(stereo)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEfmt ")
    with pytest.raises(BadDataError, match="cannot read the audio file .*broken.wav"):
        read_speech_audio(broken)


def test_a_planted_speech_response_is_recovered(models, tmp_path, tiny_model):
    """The generator plants a tiny HuBERT's response to its sound in the bilateral auditory spheres: --models <the
    HuBERT folder> is recognised from its config, its frames reach the fits at every layer, the planted spheres
    are found, and the sidecars say how the frames were computed; --plan counts the audio."""
    import json

    import nibabel as nib

    from bids_encoding.cli import main
    from bids_encoding.synthetic import generate_dataset

    settings = SpeechSettings(mode="chunked")
    truth = generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, audio=True,
                             speech_model=str(models["hubert"]), speech_settings=settings, speech_amplitude=1.5,
                             amplitude_left=0.0, amplitude_right=0.0)
    assert truth.speech_layer == 2 and truth.speech_file == "planted_speech.nii.gz"
    out = tmp_path / "out"
    arguments = [str(tmp_path / "bids"), str(out), "participant", "--models", str(models["hubert"]), "--device",
                 "cpu", "--speech-mode", "chunked", "--pvalue-method", "none"]
    assert main([*arguments, "--plan"]) == 0
    assert main(arguments) == 0
    func = out / "sub-01" / "func"
    maps = sorted(path.name for path in func.glob("*model-tinyhubert_layer-*_stat-r_statmap.nii.gz"))
    assert [name.split("_layer-")[1].split("_")[0] for name in maps] == ["0", "1", "2", "best"]
    sidecar = json.loads((func / maps[-1].replace(".nii.gz", ".json")).read_text())
    assert sidecar["Features"]["Speech"]["mode"] == "chunked" and sidecar["Features"]["Speech"]["stride"] == 0.1
    assert sidecar["Model"]["Type"] == "hubert"
    r = np.asarray(nib.load(func / maps[-1]).dataobj)
    planted = np.asarray(nib.load(tmp_path / "ground_truth" / "planted_speech.nii.gz").dataobj) > 0
    fitted = np.isfinite(r) & (r != 0)
    assert np.median(r[planted & fitted]) > 0.3
    assert np.median(r[~planted & fitted]) < 0.1


def test_a_run_whose_audio_is_shorter_than_its_words_stops(models, tmp_path, tiny_model, capsys):
    import soundfile

    from bids_encoding.cli import main
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=2, audio=True)
    wav = tmp_path / "bids" / "stimuli" / "story_run-2.wav"
    samples, rate = soundfile.read(wav)
    soundfile.write(wav, samples[:rate * 5], rate)
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--models", str(models["hubert"])])
    err = capsys.readouterr().err
    assert code == 65 and "story_run-2.wav lasts 5.0 s and the words of" in err
    assert not (tmp_path / "out" / "sub-01").exists()


def test_a_planted_speech_response_is_recovered_on_the_lebel_replica(models, tmp_path, tiny_model):
    """LeBel et al.'s layout: no events, the audio in ``stimuli/<story>.wav`` found by the preset's pattern, starting
    10 s after the first volume; the planted response is recovered there too, and --data-scaling refits the speech
    model on 1 and 2 of the training stories."""
    import nibabel as nib
    import pandas as pd

    from bids_encoding.cli import main
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, audio=True, layout="lebel",
                     speech_model=str(models["hubert"]), speech_settings=SpeechSettings(mode="chunked"),
                     speech_amplitude=1.5, amplitude_left=0.0, amplitude_right=0.0)
    assert sorted(path.name for path in (tmp_path / "bids" / "stimuli").glob("*.wav")) == [
        "alternateithicatom.wav", "avatar.wav", "souls.wav"]
    out = tmp_path / "out"
    assert main([str(tmp_path / "bids"), str(out), "participant", "--stimuli", "lebel", "--models",
                 str(models["hubert"]), "--device", "cpu", "--speech-mode", "chunked", "--pvalue-method", "none",
                 "--data-scaling", "--data-scaling-draws", "1"]) == 0
    func = out / "sub-UTS01" / "func"
    r = np.asarray(nib.load(next(func.glob("*model-tinyhubert_layer-best_stat-r_statmap.nii.gz"))).dataobj)
    planted = np.asarray(nib.load(tmp_path / "ground_truth" / "planted_speech.nii.gz").dataobj) > 0
    fitted = np.isfinite(r) & (r != 0)
    assert np.median(r[planted & fitted]) > 0.5 and abs(np.median(r[~planted & fitted])) < 0.05
    sizes = pd.read_csv(next(func.glob("*model-tinyhubert_datascaling.tsv")), sep="\t")
    assert sorted(sizes["n_stimuli"].unique()) == [1, 2] and sizes["fold"].nunique() == 3


def test_neuron_patterns_analyse_the_language_models_and_fit_the_speech_models(models, tmp_path, tiny_model):
    """--neuron-patterns reads a language model's feed-forward neurons; a speech model beside it is fitted as
    usual, without a neurons analysis (before: exit 64 after every fit, asking for --ffn-neurons)."""
    import nibabel as nib

    from bids_encoding.cli import main
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, audio=True)
    labels = nib.load(tmp_path / "ground_truth" / "planted_labels.nii.gz")
    atlas = tmp_path / "networks.nii.gz"
    nib.Nifti1Image((np.asarray(labels.dataobj) > 0).astype(np.uint8) + 1, labels.affine).to_filename(atlas)
    atlas.with_name("networks.tsv").write_text("index\tname\n1\tRest\n2\tLanguage\n")
    out = tmp_path / "out"
    assert main([str(tmp_path / "bids"), str(out), "participant", "--models", str(tiny_model), str(models["hubert"]),
                 "--device", "cpu", "--speech-mode", "chunked", "--pvalue-method", "none", "--neuron-patterns", "2",
                 "--network-atlas", str(atlas)]) == 0
    func = out / "sub-01" / "func"
    assert list(func.glob("*model-tinyhubert_layer-best_stat-r_statmap.nii.gz"))
    neurons = sorted(path.name for path in func.glob("*_desc-neurons_*.tsv"))
    assert neurons and all("model-tinygpt2" in name for name in neurons)
