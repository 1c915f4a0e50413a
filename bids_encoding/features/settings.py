"""How word vectors are made (``FeatureSettings``) and which layers are read: the settings of the feature stage,
light to import (the command line reads them before any model library is loaded)."""

from dataclasses import asdict, dataclass

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
        Minimum left context of every token in tokens; ``None`` = the largest
        that keeps each token to at most two passes (half the window, less
        the right context).
    right_context : int or None
        Encoder models only: tokens of right context every token attends
        to (an attention mask fixes it; fewer only at the end of a run);
        ``None`` = 0, a causal mask.
    batch_size : int or None
        Windows per forward pass; ``None`` = sized to the free memory.
    layers : tuple of str or None
        Layer indices (``0`` = embeddings, negative from the end) or relative
        depths (``0.5``); ``None`` = all.
    continuous : bool
        Runs of one story continue each other: a run's first words get the
        previous run's last tokens as context.
    step : int or None
        New tokens per window, the rest of the window being left context
        (Bonnasse-Gahot & Pallier: 64, ``extract_llm_activations.py``'s
        ``stride = maxlen - 64``); overrides ``context``; ``None``: from
        ``context``.
    """

    pooling: str = "last"
    window: int | None = None
    context: int | None = None
    right_context: int | None = None
    batch_size: int | None = None
    layers: tuple | None = None
    continuous: bool = False
    step: int | None = None

    def plan(self, max_tokens, is_encoder):
        """Return ``(window, left_context, right_context)`` for a model that accepts ``max_tokens``."""
        window = max(2, min(self.window or max_tokens, max_tokens))
        right = (self.right_context or 0) if is_encoder else 0
        left = (window // 2 - right) if self.context is None else self.context
        if self.step is not None:
            left = window - right - self.step
        left = max(0, min(left, window - right - 1))
        if window - left - right < 1:
            raise ValueError(f"context {left} + right context {right} leave no room in a window of {window}")
        return window, left, right

    def cache_record(self):
        """The settings that change the features (batch size does not; layers are stored one by one)."""
        record = asdict(self)
        record.pop("batch_size")
        record.pop("layers")
        if record["step"] is None:
            record.pop("step")  # caches written before the option keep their keys
        return record


def resolve_layers(layers, n_layers):
    """Layer indices from indices or relative depths.

    >>> resolve_layers(("0.25", "0.5", "1.0"), 12)
    [3, 6, 12]
    >>> resolve_layers(("0", "-1"), 12)
    [0, 12]
    """
    if not layers:
        return list(range(n_layers + 1))
    resolved = []
    for value in layers:
        text = str(value)
        index = round(float(text) * n_layers) if "." in text else int(text)
        index = index + n_layers + 1 if index < 0 else index
        if not 0 <= index <= n_layers:
            raise ValueError(f"layer {value} is outside 0..{n_layers}")
        resolved.append(index)
    return sorted(set(resolved))
