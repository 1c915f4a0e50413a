"""Hidden states of the chosen layers for every word, with long left context.

The run's token stream goes through the model in overlapping windows of
``W`` tokens with stride ``S = W - C - R``. Each token is taken from the first
window in which it has at least ``C`` tokens of left context (and, for
encoder models, ``R`` tokens of right context), so every token is processed
``W / S`` times (twice with the defaults) instead of once per word.
Layers are read from forward hooks on the transformer blocks; when only
early layers are needed, the forward pass stops after the deepest one.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from bids_encoding.backend import available_memory
from bids_encoding.features.alignment import join_words, word_token_ranges
from bids_encoding.features.settings import POOLINGS, FeatureSettings, resolve_layers  # noqa: F401 (re-exported)

LOGGER = logging.getLogger(__name__)
# The input of these modules is the feed-forward network's hidden activation (after the nonlinearity).
FFN_SECOND_LINEAR = ("mlp.c_proj", "mlp.down_proj", "mlp.fc2", "fc2", "output.dense", "mlp.dense_4h_to_h",
                     "feed_forward.w2", "feed_forward.down_proj", "ffn.lin2", "mlp.fc_out", "mlp.linear_2")


def plan_windows(n_tokens, window, left, right=0, prefix=0):
    """Windows over a token stream.

    Parameters
    ----------
    n_tokens : int
        Length of the stream (prefix included).
    window, left, right : int
        Window length, minimum left and right context.
    prefix : int
        Leading context-only tokens (from a previous run) that no window keeps.

    Returns
    -------
    list of (start, keep_from, keep_to)
        Each window is ``[start, start + window)``; it contributes tokens
        ``[keep_from, keep_to)``, and these ranges tile ``[prefix, n_tokens)``.
    """
    stride = window - left - right
    plans, start, kept = [], max(0, prefix - left), prefix
    while kept < n_tokens:
        end = min(start + window, n_tokens)
        keep_to = end if end == n_tokens else end - right
        plans.append((start, kept, keep_to))
        kept = keep_to
        start += stride
    return plans


def special_tokens(tokenizer):
    """Token ids the tokenizer puts before and after a single sequence."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    return [], []


def transformer_blocks(model, n_layers):
    """The ``ModuleList`` of the model's transformer blocks."""
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"cannot find the {n_layers} transformer blocks of {type(model).__name__}")


def ffn_second_linear(block):
    """Name and module of the feed-forward network's second linear layer in a block."""
    for name in FFN_SECOND_LINEAR:
        try:
            return name, block.get_submodule(name)
        except AttributeError:
            continue
    raise ValueError(f"cannot find the feed-forward output layer of {type(block).__name__}")


def auto_batch_size(loaded, window, n_kept_layers, device):
    """Windows per pass such that activations use at most a quarter of the free memory."""
    config = loaded.model.config
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 12)
    ffn = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * loaded.hidden_size
    per_window = 4 * window * (loaded.hidden_size * (n_kept_layers + 8) + 2 * ffn + heads * window)
    return int(max(1, min(64, available_memory(device) // 4 // per_window)))


def right_context_mask(padding, right):
    """4-D attention mask for an encoder: token ``i`` sees keys ``j <= i + right`` that are not padding.

    An encoder reads both ways, so a word's right context would depend on
    where it falls in its window (0 to ``window - context`` tokens). This
    fixes it: exactly ``right`` tokens (fewer only at the end of a run);
    ``right = 0`` is a causal mask, as the listener has heard no further.
    """
    length = padding.shape[1]
    positions = torch.arange(length)
    visible = positions[None, :] <= positions[:, None] + right
    return padding.bool()[:, None, None, :] & visible[None, None]


def forward(model, input_ids, attention_mask, **kwargs):
    """``model(input_ids, attention_mask)``; a 4-D boolean mask goes as transformers 5 takes it, or as the
    (batch, query, key) 0/1 mask that transformers 4 encoders take (found out once per model, on the shape
    error they raise)."""
    if attention_mask.dim() == 4 and getattr(model, "_takes_3d_mask", False):
        attention_mask = attention_mask[:, 0].long()
    try:
        return model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    except ValueError:
        if attention_mask.dim() != 4:
            raise
        model._takes_3d_mask = True
        return forward(model, input_ids, attention_mask, **kwargs)


class _StopForward(Exception):
    pass


class _LayerCapture:
    """Forward hooks that record block inputs (= hidden states) and FFN activations.

    ``hidden_states[k]`` of transformers is the input of block ``k + 1`` for
    ``k < n_layers``; the last one (after the final norm in most causal
    models) comes from ``output_hidden_states``, so the numbers are the
    library's own.
    """

    def __init__(self, loaded, layers, neurons):
        self.layers, self.neurons = layers, neurons
        self.n_layers = loaded.n_layers
        self.blocks = transformer_blocks(loaded.model, loaded.n_layers)
        self.needs_last = self.n_layers in layers
        self.stop_at = None if self.needs_last else max(layers)  # stop at this block's input
        self.states, self.activations, self.handles = {}, {}, []
        self.ffn_name = None
        for index, block in enumerate(self.blocks):
            if index in layers and index < self.n_layers:
                self.handles.append(block.register_forward_pre_hook(self._block_input(index), with_kwargs=True))
            if neurons and index + 1 in layers:
                self.ffn_name, ffn = ffn_second_linear(block)
                self.handles.append(ffn.register_forward_pre_hook(self._ffn_input(index + 1)))

    def _block_input(self, layer):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            self.states[layer] = hidden.detach()
            if layer == self.stop_at:
                raise _StopForward
        return hook

    def _ffn_input(self, layer):
        def hook(module, args):
            self.activations[layer] = args[0].detach()
        return hook

    def run(self, model, input_ids, attention_mask):
        self.states, self.activations = {}, {}
        try:
            output = forward(model, input_ids, attention_mask, output_hidden_states=self.needs_last)
            if self.needs_last:
                self.states[self.n_layers] = output.hidden_states[self.n_layers]
        except _StopForward:
            pass
        return self.states, self.activations

    def close(self):
        for handle in self.handles:
            handle.remove()


def _pool(states, first, last, pooling):
    if pooling == "last":
        return states[last]
    return np.stack([states[a:b + 1].mean(axis=0) for a, b in zip(first, last)])


@dataclass
class WordFeatures:
    """Features of one run's words.

    Attributes
    ----------
    hidden : dict
        ``{layer: array (n_words, hidden_size)}`` float32; layer 0 is the
        embedding layer.
    info : dict
        Window plan, tokens processed per token, layers, FFN module, and
        the words that got no token.
    neurons : dict or None
        ``{layer: array (n_words, n_neurons)}``: feed-forward activations
        (with ``neurons=True``).
    """

    hidden: dict
    info: dict
    neurons: dict | None = None


def extract_word_features(loaded, words, settings=FeatureSettings(), device="cpu", progress=True,
                          context_words=None, neurons=False, word_ranges=None):
    """Hidden states of the chosen layers for every word of one run.

    Parameters
    ----------
    loaded : LoadedModel
    words : list of str
        The run's words in order.
    settings : FeatureSettings
    device : str
    progress : bool
        Show a progress bar in tokens.
    context_words : list of str or None
        Words heard before the run (the previous run of the story); their
        last tokens serve as left context only.
    neurons : bool
        Also return the feed-forward activations (input of each block's
        second feed-forward linear layer), per word.
    word_ranges : sequence of (int, int) or None
        One row per range instead of one per word: the tokens from the first word's to the last word's of each
        (``words`` is a transcript, the ranges are its timed words: ``Stimulus.word_ranges``).

    Returns
    -------
    WordFeatures
    """
    if settings.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}")
    tokenizer = loaded.tokenizer
    layers = resolve_layers(settings.layers, loaded.n_layers)
    prefix_ids, suffix_ids = special_tokens(tokenizer)
    window, left, right = settings.plan(loaded.max_tokens - len(prefix_ids) - len(suffix_ids), loaded.is_encoder)

    text, spans = join_words(words)
    # the whole run at once is longer than the model's window, hence verbose=False
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    first, last = word_token_ranges(encoding["offset_mapping"], spans, text)
    context_ids = []
    if context_words and left:
        context_text, _ = join_words(list(context_words))
        context_ids = tokenizer(context_text, add_special_tokens=False, verbose=False)["input_ids"][-left:]
    stream = list(context_ids) + list(encoding["input_ids"])
    plans = plan_windows(len(stream), window, left, right, prefix=len(context_ids))
    batch_size = settings.batch_size or auto_batch_size(loaded, window, len(layers), device)

    n_tokens = len(encoding["input_ids"])
    states, activations = {}, {}  # sized from the captured tensors (OPT projects its last layer, for one)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    capture = _LayerCapture(loaded, layers, neurons)
    bar = tqdm(total=n_tokens, desc=f"features {loaded.spec.label}", unit="tok", disable=not progress, leave=False)
    try:
        with torch.no_grad():
            for batch_start in range(0, len(plans), batch_size):
                batch = plans[batch_start:batch_start + batch_size]
                inputs = [prefix_ids + stream[start:min(start + window, len(stream))] + suffix_ids
                          for start, _, _ in batch]
                length = max(map(len, inputs))
                input_ids = torch.full((len(inputs), length), pad_id, dtype=torch.long)
                attention = torch.zeros((len(inputs), length), dtype=torch.long)
                for row, ids in enumerate(inputs):
                    input_ids[row, :len(ids)] = torch.tensor(ids)
                    attention[row, :len(ids)] = 1
                if loaded.is_encoder:
                    attention = right_context_mask(attention, right)
                hidden, ffn = capture.run(loaded.model, input_ids.to(loaded.input_device),
                                          attention.to(loaded.input_device))
                for row, (start, keep_from, keep_to) in enumerate(batch):
                    local = slice(len(prefix_ids) + keep_from - start, len(prefix_ids) + keep_to - start)
                    kept = slice(keep_from - len(context_ids), keep_to - len(context_ids))
                    for captured, arrays in ((hidden, states), (ffn, activations)):
                        for layer, values in captured.items():
                            if layer not in arrays:
                                arrays[layer] = np.zeros((n_tokens, values.shape[-1]), dtype=np.float32)
                            arrays[layer][kept] = values[row, local].float().cpu().numpy()
                    bar.update(keep_to - keep_from)
    finally:
        capture.close()
        bar.close()

    missing = np.flatnonzero(last < 0)
    if missing.size:
        LOGGER.warning("%d word(s) got no token and inherit the previous word's vector: %s",
                       missing.size, ", ".join(repr(words[i]) for i in missing[:5]))
    first, last = _inherit_previous(first), _inherit_previous(last)
    if word_ranges is not None:
        ranges = np.asarray(word_ranges, dtype=np.int64).reshape(-1, 2)
        first, last = first[ranges[:, 0]], last[ranges[:, 1]]
    features = {layer: _pool(values, first, last, settings.pooling) for layer, values in states.items()}
    info = {
        "window": window, "context": left, "right_context": right, "n_windows": len(plans),
        "batch_size": batch_size, "layers": layers, "n_tokens": n_tokens, "n_words": len(first),
        "n_context_tokens": len(context_ids),
        "tokens_processed_per_token": float(sum(min(s + window, len(stream)) - s for s, _, _ in plans)
                                            / max(n_tokens, 1)),
        "words_without_token": [int(i) for i in missing],
    }
    if not neurons:
        return WordFeatures(features, info)
    info["ffn_module"] = capture.ffn_name
    return WordFeatures(features, info, {layer: _pool(values, first, last, settings.pooling)
                                         for layer, values in activations.items()})


def _inherit_previous(indices):
    """Words without a token take the previous word's token (the first word: token 0)."""
    indices = indices.copy()
    for i in range(len(indices)):
        if indices[i] < 0:
            indices[i] = indices[i - 1] if i else 0
    return indices
