"""Baseline features that need no language model (Bonnasse-Gahot & Pallier's controls).

- ``random:token``: an independent random vector for every word occurrence;
- ``random:type``: one fixed random vector per word type (lower-cased,
  punctuation stripped), the same in every run and participant;
- ``wordrate``: a constant 1 per word: after HRF convolution, the word rate;
- ``wordlength``: the number of letters of each word.
"""

import hashlib

import numpy as np

BASELINE_SEED = 0


def _word_type(word):
    return "".join(c for c in word.lower() if c.isalnum()) or word


def _type_vector(word_type, dim, seed):
    digest = hashlib.sha256(f"{seed}:{word_type}".encode()).digest()
    return np.random.default_rng(np.frombuffer(digest[:8], dtype=np.uint64)[0]).standard_normal(dim)


def baseline_features(spec, words, stimulus_seed=0):
    """Features of a baseline for one run's words.

    Parameters
    ----------
    spec : ModelSpec
        A baseline spec (``spec.location`` names it).
    words : list of str
    stimulus_seed : int
        Mixed into ``random:token``'s seed so that runs differ.

    Returns
    -------
    dict
        ``{0: array (n_words, dim)}`` float32.
    """
    name = spec.location
    if name == "random:token":
        rng = np.random.default_rng([BASELINE_SEED, stimulus_seed])
        values = rng.standard_normal((len(words), spec.dim))
    elif name == "random:type":
        values = np.stack([_type_vector(_word_type(w), spec.dim, BASELINE_SEED) for w in words])
    elif name == "wordrate":
        values = np.ones((len(words), 1))
    elif name == "wordlength":
        values = np.array([[sum(c.isalnum() for c in word)] for word in words], dtype=float)
    else:
        raise ValueError(f"unknown baseline {name}")
    return {0: values.astype(np.float32)}
