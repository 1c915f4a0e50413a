"""Feature extraction: strided windows (ours) vs one window per word (peers), same model and text.

The per-word approach runs, for every word, the ``C`` tokens that end with
the word's last token (LITcoder, NeuralSet, TRIBE do this with C = 1024).
Ours runs windows of ``2C`` tokens with stride ``C``: every word still sees at
least ``C`` tokens of left context, and each token goes through the model
about twice.

Usage::

    python benchmarks/bench_features.py [--context 512] [--model DIR_OR_HUB_ID] [--device cpu]

Speech models (``--speech tiny|base``): a HuBERT of random weights (tiny: 2 layers of 16; base: transformers'
default HubertConfig, the size of facebook/hubert-base-ls960) over synthetic sound, in the window mode (Antonello
et al.'s 16.1 s causal window per 0.1 s frame) on ``--window-seconds`` of audio and the chunked mode on
``--chunk-seconds``: audio seconds per second of each, appended to the same results file::

    python benchmarks/bench_features.py --speech base [--window-seconds 4] [--chunk-seconds 60]

Without ``--model``, a small GPT-2 (4 layers, 256 hidden, 1024 positions,
random init) with a byte-level BPE trained on the story is built in a
temporary folder. The LAST line printed is
``ratio=<per-word time / our time> tokens_per_word=<ours>``; results are
appended to ``benchmarks/results/bench_features.jsonl``.
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import append_result

from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.features.alignment import join_words, word_token_ranges
from bids_encoding.synthetic.story import STORY

RESULTS = Path(__file__).parent / "results" / "bench_features.jsonl"


def build_small_gpt2(directory, n_positions=1024):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([STORY], vocab_size=1000, min_frequency=2)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, pad_token="<pad>")
    torch.manual_seed(0)
    GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=256, n_layer=4,
                         n_head=4)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@torch.no_grad()
def per_word_features(loaded, words, context, batch_size, device):
    """The peers' way: one forward pass of the C tokens ending at each word's last token."""
    text, spans = join_words(words)
    encoding = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = encoding["input_ids"]
    _, last = word_token_ranges(encoding["offset_mapping"], spans, text)
    windows = [ids[max(0, t + 1 - context):t + 1] for t in last]
    pad = loaded.tokenizer.pad_token_id or 0
    features = np.zeros((loaded.n_layers + 1, len(words), loaded.hidden_size), dtype=np.float32)
    processed = 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size]
        length = max(map(len, batch))
        input_ids = torch.full((len(batch), length), pad, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, window in enumerate(batch):
            input_ids[row, :len(window)] = torch.tensor(window)
            attention[row, :len(window)] = 1
        output = loaded.model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                              output_hidden_states=True)
        hidden = torch.stack(output.hidden_states).float().cpu().numpy()
        for row, window in enumerate(batch):
            features[:, start + row] = hidden[:, row, len(window) - 1]
        processed += sum(map(len, batch))
    return features, processed / len(words), last


def speech(args):
    """``--speech``: audio seconds per second of the window and chunked modes of a random HuBERT."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from bids_encoding.features.speech import MODEL_RATE, SpeechModel, SpeechSettings, chunked_states, window_states

    torch.manual_seed(0)
    config = HubertConfig() if args.speech == "base" else HubertConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    model = HubertModel(config).eval().to(args.device)
    speech_model = SpeechModel(model, Wav2Vec2FeatureExtractor(do_normalize=True), args.device)
    rng = np.random.default_rng(0)
    seconds = max(args.window_seconds + 16.1, args.chunk_seconds)
    samples = (0.1 * rng.standard_normal(int(seconds * MODEL_RATE))).astype(np.float32)
    window_states(speech_model, samples[:MODEL_RATE * 17], SpeechSettings(batch_size=args.batch_size))  # warm-up
    # from the audio's start: the first 16.1 s of frames have shorter windows (cheaper than the steady state)
    start = time.perf_counter()
    full = samples[:int((16.1 + args.window_seconds) * MODEL_RATE)]
    window = window_states(speech_model, full, SpeechSettings(batch_size=args.batch_size))
    window_time = time.perf_counter() - start
    start = time.perf_counter()
    chunked_states(speech_model, samples[:int(args.chunk_seconds * MODEL_RATE)], SpeechSettings(mode="chunked"))
    chunk_time = time.perf_counter() - start
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device,
              "device_name": platform.processor() or "cpu", "threads": torch.get_num_threads(),
              "speech_model": f"HuBERT {args.speech} (random weights)",
              "n_params": sum(p.numel() for p in model.parameters()),
              "window_audio_seconds": round(len(full) / MODEL_RATE, 1), "window_frames": window.shape[1],
              "window_seconds": round(window_time, 2),
              "window_audio_seconds_per_second": round(len(full) / MODEL_RATE / window_time, 4),
              "chunked_audio_seconds": args.chunk_seconds, "chunked_seconds": round(chunk_time, 2),
              "chunked_audio_seconds_per_second": round(args.chunk_seconds / chunk_time, 3),
              "chunked_vs_window": round((args.chunk_seconds / chunk_time) / (len(full) / MODEL_RATE / window_time),
                                         1)}
    append_result(RESULTS, result)
    print(f"window mode: {result['window_audio_seconds_per_second']} audio s/s; chunked: "
          f"{result['chunked_audio_seconds_per_second']} audio s/s")
    print(f"ratio={result['chunked_vs_window']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", choices=("tiny", "base"), default=None,
                        help="time a random HuBERT's speech features instead (see above)")
    parser.add_argument("--window-seconds", type=float, default=4.0)
    parser.add_argument("--chunk-seconds", type=float, default=60.0)
    parser.add_argument("--context", type=int, default=512, help="C: tokens of left context per word")
    parser.add_argument("--model", default=None, help="model id or directory (default: small GPT-2)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="repeat the story to lengthen the text")
    args = parser.parse_args()
    if args.speech:
        return speech(args)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_small_gpt2(Path(tmp) / "gpt2small", n_positions=2 * args.context)
        loaded = load_model(parse_model_spec(model), device=args.device, dtype=args.dtype)
        words = STORY.split() * args.repeat
        if loaded.max_tokens < 2 * args.context:
            raise SystemExit(f"the model's window ({loaded.max_tokens}) is shorter than 2 x context")

        settings = FeatureSettings(window=2 * args.context, context=args.context, batch_size=args.batch_size)
        extract_word_features(loaded, words[:200], settings, device=args.device, progress=False)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        extracted = extract_word_features(loaded, words, settings, device=args.device, progress=False)
        ours, info = extracted.hidden, extracted.info
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        our_time = time.perf_counter() - start
        our_tokens_per_word = info["tokens_processed_per_token"] * info["n_tokens"] / len(words)

        start = time.perf_counter()
        reference, their_tokens_per_word, last = per_word_features(loaded, words, args.context, args.batch_size,
                                                                   args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        their_time = time.perf_counter() - start

    # words whose whole left context fits in C tokens have identical features both ways
    same = last < args.context
    difference = max(float(np.abs(ours[layer][same] - reference[layer][same]).max()) for layer in ours)
    flops_per_token = 2 * loaded.n_params_non_embedding
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device, "device_name": device_name,
        "threads": torch.get_num_threads(), "model": args.model or "small GPT-2 (4x256, random init)",
        "n_params": loaded.n_params, "context": args.context, "n_words": len(words), "n_tokens": info["n_tokens"],
        "ours_seconds": round(our_time, 3), "ours_tokens_per_word": round(our_tokens_per_word, 3),
        "per_word_seconds": round(their_time, 3), "per_word_tokens_per_word": round(their_tokens_per_word, 1),
        "ours_tokens_per_second": round(info["tokens_processed_per_token"] * info["n_tokens"] / our_time, 1),
        "ours_tflops": round(flops_per_token * info["tokens_processed_per_token"] * info["n_tokens"] / our_time / 1e12,
                             4),
        "max_abs_diff_words_within_context": difference,
        "ratio": round(their_time / our_time, 2),
    }
    append_result(RESULTS, result)
    print(f"per-word windows: {their_tokens_per_word:.1f} tokens processed per word, {their_time:.2f} s")
    print(f"strided windows:  {our_tokens_per_word:.2f} tokens processed per word, {our_time:.2f} s "
          f"({result['ours_tokens_per_second']:.0f} tokens/s, {result['ours_tflops']} TFLOP/s at 2N FLOP/token)")
    print(f"identical features where the context fits: max |diff| = {difference:.2e}")
    print(f"ratio={result['ratio']} tokens_per_word={our_tokens_per_word:.3f}")


if __name__ == "__main__":
    main()
