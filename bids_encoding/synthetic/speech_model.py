"""Tiny random speech models (HuBERT, WavLM, Whisper) saved as a hub model's folder, with their feature extractor:
the planted speech truth of ``bids_encoding demo --speech`` and of the tests. Random weights suffice: the
generator plants the model's own response to the sound, so the fit recovers it whatever the weights are."""

SPEECH_KINDS = ("hubert", "wavlm", "whisper")


def build_speech_model(folder, kind="hubert", hidden_size=16, n_layers=2, seed=0):
    """Write a random ``kind`` speech model of ``n_layers`` layers of ``hidden_size`` to ``folder``; return it.

    The convolutional front end of HuBERT and WavLM keeps wav2vec 2.0's strides (one frame per 20 ms at 16 kHz)
    with 8 channels; Whisper keeps its 80 mel bins and 30 s input.
    """
    import torch
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2FeatureExtractor,
        WavLMConfig,
        WavLMModel,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    if kind not in SPEECH_KINDS:
        raise ValueError(f"kind must be one of {SPEECH_KINDS}")
    torch.manual_seed(seed)
    heads = 2
    if kind == "whisper":
        model = WhisperModel(WhisperConfig(
            d_model=hidden_size, encoder_layers=n_layers, decoder_layers=1, encoder_attention_heads=heads,
            decoder_attention_heads=heads, encoder_ffn_dim=2 * hidden_size, decoder_ffn_dim=2 * hidden_size,
            num_mel_bins=80, vocab_size=64, max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=3))
        extractor = WhisperFeatureExtractor(feature_size=80)
    else:
        config = (HubertConfig if kind == "hubert" else WavLMConfig)(
            hidden_size=hidden_size, num_hidden_layers=n_layers, num_attention_heads=heads,
            intermediate_size=2 * hidden_size, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
            conv_dim=(8,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2))
        model = (HubertModel if kind == "hubert" else WavLMModel)(config)
        extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder
