"""Hidden states of every layer for every word, with long left context.

The run's text goes through the model in overlapping windows of ``W``
tokens with stride ``S = W - C``: each token is taken from the first window
in which it has at least ``C`` tokens of left context (all tokens of the
first window), so every token is processed ``W / S`` times on average
(twice with the default ``C = W / 2``) instead of once per word.
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from bids_encoding.features.alignment import join_words, token_word_index

LOGGER = logging.getLogger(__name__)
POOLINGS = ("last", "mean")


@dataclass(frozen=True)
class FeatureSettings:
    """How word vectors are made.

    Attributes
    ----------
    pooling : str
        ``last``: hidden state of the word's last token (Antonello et al.);
        ``mean``: mean over its tokens (Bonnasse-Gahot & Pallier).
    window : int or None
        Tokens per forward pass; ``None`` = the model's maximum.
    context : int or None
        Minimum left context in tokens; ``None`` = half the window.
    batch_size : int
        Windows per forward pass.
    """

    pooling: str = "last"
    window: int | None = None
    context: int | None = None
    batch_size: int = 4

    def resolve(self, max_tokens):
        """Return ``(window, context)`` for a model that accepts ``max_tokens``."""
        window = min(self.window or max_tokens, max_tokens)
        context = window // 2 if self.context is None else min(self.context, window - 1)
        return window, context

    def record(self, max_tokens):
        window, context = self.resolve(max_tokens)
        return {**asdict(self), "window": window, "context": context}


def window_starts(n_tokens, window, context):
    """Start of each window and the first token each window contributes."""
    stride = window - context
    starts = [0]
    while starts[-1] + window < n_tokens:
        starts.append(starts[-1] + stride)
    owned_from = [0] + [start + context for start in starts[1:]]
    return starts, owned_from


def special_tokens(tokenizer):
    """Token ids the tokenizer puts before and after a single sequence."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    return [], []


@torch.no_grad()
def _token_hidden_states(loaded, token_ids, settings, device, progress):
    tokenizer, model = loaded.tokenizer, loaded.model
    prefix, suffix = special_tokens(tokenizer)
    n_extra = len(prefix) + len(suffix)
    window, context = settings.resolve(loaded.max_tokens - n_extra)
    starts, owned_from = window_starts(len(token_ids), window, context)
    n_states = loaded.n_layers + 1
    states = np.zeros((n_states, len(token_ids), loaded.hidden_size), dtype=np.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bar = tqdm(total=len(token_ids), desc="features", unit="tok", disable=not progress, leave=False)
    for batch_start in range(0, len(starts), settings.batch_size):
        batch = []
        for k in range(batch_start, min(batch_start + settings.batch_size, len(starts))):
            end = min(starts[k] + window, len(token_ids))
            batch.append((k, end, prefix + list(token_ids[starts[k]:end]) + suffix))
        length = max(len(item[2]) for item in batch)
        input_ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), length), dtype=torch.long)
        for row, (_, _, built) in enumerate(batch):
            input_ids[row, : len(built)] = torch.tensor(built)
            attention[row, : len(built)] = 1
        output = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                       output_hidden_states=True)
        hidden = torch.stack(output.hidden_states).float().cpu().numpy()
        for row, (k, end, _) in enumerate(batch):
            first = owned_from[k]
            local = slice(len(prefix) + first - starts[k], len(prefix) + end - starts[k])
            states[:, first:end] = hidden[:, row, local]
            bar.update(end - first)
    bar.close()
    return states, {"window": window, "context": context, "n_windows": len(starts),
                    "tokens_processed_per_token": float(sum(min(s + window, len(token_ids)) - s for s in starts)
                                                        / max(len(token_ids), 1))}


def extract_word_features(loaded, words, settings=FeatureSettings(), device="cpu", progress=True):
    """Hidden states of every layer for every word of one run.

    Parameters
    ----------
    loaded : LoadedModel
    words : list of str
        The run's words in order.
    settings : FeatureSettings
    device : str
    progress : bool
        Show a progress bar in tokens.

    Returns
    -------
    features : numpy.ndarray
        ``(n_layers + 1, n_words, hidden_size)`` float32; index 0 is the
        embedding layer.
    info : dict
        Window, context, tokens per word, and words that got no token.
    """
    if settings.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}")
    text, spans = join_words(words)
    # the whole run at once: longer than the model's window, hence verbose=False
    encoding = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    token_ids = encoding["input_ids"]
    token_words = token_word_index(encoding["offset_mapping"], spans, len(text))
    states, info = _token_hidden_states(loaded, token_ids, settings, device, progress)

    n_words = len(words)
    features = np.zeros((states.shape[0], n_words, states.shape[2]), dtype=np.float32)
    has_token = np.zeros(n_words, dtype=bool)
    valid = np.flatnonzero(token_words >= 0)
    if settings.pooling == "last":
        last_token = np.full(n_words, -1, dtype=np.int64)
        np.maximum.at(last_token, token_words[valid], valid)
        with_token = np.flatnonzero(last_token >= 0)
        features[:, with_token] = states[:, last_token[with_token]]
    else:
        counts = np.bincount(token_words[valid], minlength=n_words).astype(np.float32)
        np.add.at(features, (slice(None), token_words[valid]), states[:, valid])
        features /= np.maximum(counts, 1)[None, :, None]
    has_token[token_words[valid]] = True
    missing = np.flatnonzero(~has_token)
    for index in missing:
        if index > 0:
            features[:, index] = features[:, index - 1]
    if missing.size:
        LOGGER.warning("%d word(s) got no token and inherit the previous word's vector: %s",
                       missing.size, ", ".join(repr(words[i]) for i in missing[:5]))
    info.update(n_tokens=len(token_ids), n_words=n_words,
                words_without_token=[int(i) for i in missing])
    return features, info
