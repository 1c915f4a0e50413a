"""A tiny GPT-2 whose feed-forward neurons form known groups: the planted truth of the neurons-to-networks
analysis (``bids_encoding demo --neuron-groups``, the tests).

Each neuron of group ``g`` reads the same direction ``d_g`` of the residual stream (its input weights are
``d_g`` plus a little noise), so the neurons of one group share one activation time course and different
groups follow different ones. The tokenizer is word-level over the demo story's vocabulary: the model
works offline and is built in a second.
"""

from pathlib import Path

import numpy as np

from bids_encoding.synthetic.story import STORY

GROUP_NOISE = 0.05  # spread of a neuron's input weights around its group's direction, relative to it


def story_tokenizer(specials=("[UNK]", "[PAD]"), wrap=None):
    """A fast word-level tokenizer over the story's vocabulary; ``specials`` take the first ids.

    ``wrap``: ``(bos, eos)`` special tokens put around every sequence (RoBERTa's ``<s> ... </s>``).
    Returns ``(tokenizer, vocabulary size)``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(specials)}
    for piece, _ in pre_tokenizers.Whitespace().pre_tokenize_str(STORY):
        vocab.setdefault(piece, len(vocab))
    unknown = next(token for token in specials if "unk" in token.lower())
    pad = next(token for token in specials if "pad" in token.lower())
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unknown))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    extra = {}
    if wrap:
        bos, eos = wrap
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])])
        extra = {"bos_token": bos, "eos_token": eos}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token=unknown, pad_token=pad, **extra), len(vocab)


def build_neuron_model(directory, n_groups=4, per_group=32, n_embd=32, seed=0):
    """Save a one-block GPT-2 with ``n_groups`` groups of ``per_group`` feed-forward neurons to ``directory``.

    Returns
    -------
    numpy.ndarray
        Each neuron's group (the neurons of layer 1, in order).
    """
    import torch
    from transformers import GPT2Config, GPT2Model

    tokenizer, vocab_size = story_tokenizer()
    config = GPT2Config(vocab_size=vocab_size, n_positions=128, n_embd=n_embd, n_layer=1, n_head=2,
                        n_inner=n_groups * per_group)
    torch.manual_seed(seed)
    model = GPT2Model(config)
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    directions, _ = np.linalg.qr(rng.standard_normal((n_embd, n_groups)))  # orthonormal: distinct time courses
    weights = directions[:, groups] * 3.0
    weights += GROUP_NOISE * 3.0 * rng.standard_normal(weights.shape) / np.sqrt(n_embd)
    with torch.no_grad():
        model.h[0].mlp.c_fc.weight.copy_(torch.as_tensor(weights, dtype=torch.float32))  # Conv1D: (in, out)
        model.h[0].mlp.c_fc.bias.zero_()
    Path(directory).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return groups
