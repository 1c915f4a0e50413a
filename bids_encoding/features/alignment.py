"""Match tokens to words through the fast tokenizer's character offsets."""

import numpy as np


def join_words(words):
    """Join words with single spaces.

    Returns
    -------
    text : str
    spans : list of (start, end)
        Character span of each word in ``text``.
    """
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def token_word_index(offsets, spans, text_length):
    """Word index of every token, -1 for tokens that belong to no word.

    A token belongs to the word that holds the first non-space character of
    its offset span, so byte-level BPE tokens with a leading space (``Ġ``),
    SentencePiece ``▁`` pieces and WordPiece ``##`` continuations all map
    to their word.

    Parameters
    ----------
    offsets : sequence of (start, end)
        Character offsets of each token (``return_offsets_mapping``).
    spans : list of (start, end)
        Character span of each word.
    text_length : int

    Returns
    -------
    numpy.ndarray of int
    """
    char_word = np.full(text_length + 1, -1, dtype=np.int64)
    for index, (start, end) in enumerate(spans):
        char_word[start:end] = index
    token_words = np.full(len(offsets), -1, dtype=np.int64)
    for token, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        owners = char_word[start:end]
        owners = owners[owners >= 0]
        if owners.size:
            token_words[token] = owners[0]
    return token_words
