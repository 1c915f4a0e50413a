"""Baseline features that need no language model (Bonnasse-Gahot & Pallier's controls).

- ``random:token``: an independent random vector for every word occurrence;
- ``random:type``: one fixed random vector per word type (lower-cased,
  punctuation stripped), the same in every run and participant;
- ``wordrate``: a constant 1 per word: after HRF convolution, the word rate;
- ``wordlength``: the number of letters of each word;
- ``wordfreq[:LANG]``: each word's Zipf frequency in language ``LANG`` (default: the stimulus specification's
  ``language``, else ``en``; the ``wordfreq`` package);
- ``vectors:FILE``: each word's static vector from a GloVe or word2vec text file (:mod:`.static`);
- ``phonemes``: each word's number of phones (after HRF convolution, the phoneme rate), from a phone tier of the
  word timings (LeBel et al.'s TextGrids); ``phonemes:arpabet``: each word's count of each of the 39 ARPAbet
  phonemes (the phoneme identities, as the Huth lab's phoneme features).
"""

import hashlib

import numpy as np

from bids_encoding.features.static import word_frequencies, word_type, word_vectors

BASELINE_SEED = 0
# the 39 phonemes of CMUdict's ARPAbet (the phone tiers of LeBel et al.'s TextGrids), without stress
ARPABET = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
           "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH")


def _type_vector(kind, dim, seed):
    digest = hashlib.sha256(f"{seed}:{kind}".encode()).digest()
    return np.random.default_rng(np.frombuffer(digest[:8], dtype=np.uint64)[0]).standard_normal(dim)


def _random_token(words, spec, stimulus_seed):
    return np.random.default_rng([BASELINE_SEED, stimulus_seed]).standard_normal((len(words), spec.dim))


def _random_type(words, spec, stimulus_seed):
    return np.stack([_type_vector(word_type(w), spec.dim, BASELINE_SEED) for w in words])


def _word_rate(words, spec, stimulus_seed):
    return np.ones((len(words), 1))


def _word_length(words, spec, stimulus_seed):
    return np.array([[sum(c.isalnum() for c in word)] for word in words], dtype=float)


def _phonemes(words, spec, stimulus_seed, phones=None):
    if phones is None:
        raise ValueError("phonemes: the word timings carry no phone tier")
    if baseline_argument(spec) == "arpabet":
        return phoneme_counts(phones)
    return np.array([[len(labels)] for labels in phones], dtype=float)


def phoneme_counts(phones):
    """``(n_words, 39)``: how often each ARPAbet phoneme (:data:`ARPABET`, stress digits dropped) occurs in each
    word's phones; other labels are not counted."""
    index = {phoneme: column for column, phoneme in enumerate(ARPABET)}
    counts = np.zeros((len(phones), len(ARPABET)))
    for row, labels in enumerate(phones):
        for label in labels:
            column = index.get(label.upper().rstrip("012"))
            if column is not None:
                counts[row, column] += 1
    return counts


def _word_frequency(words, spec, stimulus_seed, language=None):
    return word_frequencies(words, baseline_argument(spec) or language or "en")


def _static_vectors(words, spec, stimulus_seed):
    return word_vectors(words, baseline_argument(spec))


# name -> function(words, spec, stimulus_seed) -> (n_words, dim); a new baseline is one function and one entry
BASELINES = {"random:token": _random_token, "random:type": _random_type, "wordrate": _word_rate,
             "wordlength": _word_length, "wordfreq": _word_frequency, "vectors": _static_vectors,
             "phonemes": _phonemes}
NEEDS_PHONES = {"phonemes"}  # the baselines that read each word's phones
NEEDS_LANGUAGE = {"wordfreq"}  # the baselines that read the stimulus's language


def baseline_argument(spec):
    """What follows a baseline's name in its id (``wordfreq:fr`` -> ``fr``, ``vectors:FILE`` -> the file);
    ``None`` when nothing does."""
    rest = spec.model_id[len(spec.location):]
    return rest[1:] if rest.startswith(":") else None


def baseline_features(spec, words, stimulus_seed=0, phones=None, language=None):
    """Features of a baseline for one run's words.

    Parameters
    ----------
    spec : ModelSpec
        A baseline spec (``spec.location`` names it).
    words : list of str
    stimulus_seed : int
        Mixed into ``random:token``'s seed so that runs differ.
    phones : sequence of sequences of str or None
        Each word's phones (``phonemes``).
    language : str or None
        The stimulus's language (``wordfreq`` without ``:LANG``).

    Returns
    -------
    dict
        ``{0: array (n_words, dim)}`` float32.
    """
    if spec.location not in BASELINES:
        raise ValueError(f"unknown baseline {spec.location}: use one of {', '.join(BASELINES)}")
    function = BASELINES[spec.location]
    arguments = {**({"phones": phones} if spec.location in NEEDS_PHONES else {}),
                 **({"language": language} if spec.location in NEEDS_LANGUAGE else {})}
    return {0: function(words, spec, stimulus_seed, **arguments).astype(np.float32)}
