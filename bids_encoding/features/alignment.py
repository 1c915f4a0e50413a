"""Match tokens to words through the fast tokenizer's character offsets.

Works for byte-level BPE (GPT-2's ``Ġ``: the offset may include the leading
space), SentencePiece (``▁``), WordPiece (``##`` continuations), punctuation
glued to words, words split into many tokens, special tokens (empty offsets,
ignored), and scripts written without spaces (Chinese), where one token may
straddle two words: it then belongs to both.
"""

import unicodedata

import numpy as np


def _is_spaceless_script(character):
    """CJK ideographs, kana and hangul: scripts whose words are not separated by spaces."""
    name = unicodedata.name(character, "")
    return name.startswith(("CJK UNIFIED", "CJK COMPATIBILITY", "HIRAGANA", "KATAKANA", "HANGUL"))


def word_separator(words):
    """``""`` when most words are in a script written without spaces, else ``" "``."""
    letters = [c for word in words for c in word if c.isalpha()]
    if letters and sum(map(_is_spaceless_script, letters)) > len(letters) / 2:
        return ""
    return " "


def join_words(words, separator=None):
    """Join words into the text the model reads.

    Parameters
    ----------
    words : list of str
    separator : str or None
        ``None``: a space, or nothing for Chinese/Japanese text (see
        :func:`word_separator`).

    Returns
    -------
    text : str
    spans : list of (start, end)
        Character span of each word in ``text``.
    """
    separator = word_separator(words) if separator is None else separator
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + len(separator)
    return separator.join(words), spans


def word_token_ranges(offsets, spans, text):
    """First and last token of every word's own tokens; -1 for words no token covers.

    A token covers a word when its character offsets overlap the word's
    span on a non-space character. A word's own tokens are those that cover
    one of its letters or digits: punctuation written with the word
    ("prince," or "«hello»") has tokens of its own that are left out, so
    ``last`` pooling takes the word's vector, not the comma's. A word made of
    punctuation alone keeps all its tokens.

    Parameters
    ----------
    offsets : sequence of (start, end)
        Character offsets of each token (``return_offsets_mapping``).
    spans : list of (start, end)
        Character span of each word.
    text : str
        The text the offsets refer to.

    Returns
    -------
    first, last : numpy.ndarray of int
    """
    char_word = np.full(len(text) + 1, -1, dtype=np.int64)
    for index, (start, end) in enumerate(spans):
        char_word[start:end] = index
    is_content = np.array([character.isalnum() for character in text] + [False])
    n_words = len(spans)
    none = np.iinfo(np.int64).max
    first, content_first = np.full(n_words, none, dtype=np.int64), np.full(n_words, none, dtype=np.int64)
    last, content_last = np.full(n_words, -1, dtype=np.int64), np.full(n_words, -1, dtype=np.int64)
    for token, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        owners = char_word[start:end]
        inside = owners >= 0
        if not inside.any():
            continue
        low, high = owners[inside].min(), owners[inside].max()
        first[low:high + 1] = np.minimum(first[low:high + 1], token)
        last[low:high + 1] = np.maximum(last[low:high + 1], token)
        for word in np.unique(owners[inside & is_content[start:end]]):
            content_first[word] = min(content_first[word], token)
            content_last[word] = max(content_last[word], token)
    has_content = content_last >= 0
    first = np.where(has_content, content_first, first)
    last = np.where(has_content, content_last, last)
    first[last < 0] = -1
    return first, last
