"""Praat TextGrid word tiers (long and short text formats, parsed by praatio), with each word's number of phones
where the grid has a phone tier (LeBel et al.'s TextGrids: ARPAbet phones beside the words)."""

import numpy as np

from bids_encoding.errors import BadDataError
from bids_encoding.inputs.timings.base import WordTimings, read_text, word_table

# Labels that are not words, as the Huth lab's code drops them (LeBel et al. TextGrids).
DEFAULT_NON_WORDS = ("sp", "", "#", "{br}", "{lg}", "{ls}", "{ns}", "{sl}", "sentence_start", "sentence_end")
WORD_TIER_NAMES = ("word", "words", "mot", "mots")
PHONE_TIER_NAMES = ("phone", "phones", "phoneme", "phonemes")
NON_PHONES = ("sil", "spn")  # silence and spoken noise, beside the non-words


def read_textgrid(path, tier=None, non_words=DEFAULT_NON_WORDS):
    """Words of one interval tier.

    Parameters
    ----------
    path : str or Path
    tier : str, int or None
        The tier's name, or its index from 0; ``None``: the tier named
        ``word``/``words`` (any case), or the only interval tier.
    non_words : sequence of str
        Labels dropped (compared after stripping spaces, case-insensitively).
    """
    from praatio.utilities.textgrid_io import parseTextgridStr

    try:
        grid = parseTextgridStr(read_text(path), includeEmptyIntervals=True)
    except Exception as error:  # praatio raises bare exceptions of several kinds on malformed files
        raise BadDataError(f"{path} is not a readable Praat TextGrid: {error}") from error
    tiers = [t for t in grid["tiers"] if t["class"] == "IntervalTier"]
    chosen = _choose_tier(tiers, tier, path)
    skip = {label.strip().lower() for label in non_words}
    kept = [entry for entry in chosen["entries"] if entry.label.strip().lower() not in skip]
    words = word_table([e.start for e in kept], [e.end for e in kept], [e.label for e in kept], path)
    phone_tier = next((t for t in tiers if t["name"].strip().lower() in PHONE_TIER_NAMES and t is not chosen), None)
    if phone_tier is not None:
        words["phones"] = _phones_per_word(words, phone_tier["entries"], skip | set(NON_PHONES))
        words["n_phones"] = [len(phones.split()) for phones in words["phones"]]
    return WordTimings(words, str(path), dropped=len(chosen["entries"]) - len(kept))


def _phones_per_word(words, phones, skip):
    """The phones whose midpoint falls within each word, their labels joined by spaces."""
    kept = sorted(((float(p.start) + float(p.end)) / 2, p.label.strip()) for p in phones
                  if p.label.strip().lower() not in skip)
    midpoints = np.array([midpoint for midpoint, _ in kept])
    starts = np.searchsorted(midpoints, words["onset"].to_numpy(), side="left")
    stops = np.searchsorted(midpoints, words["offset"].to_numpy(), side="left")
    return [" ".join(label for _, label in kept[start:stop]) for start, stop in zip(starts, stops)]


def _choose_tier(tiers, tier, path):
    names = [t["name"] for t in tiers]
    if isinstance(tier, int) or (isinstance(tier, str) and tier.isdigit()):
        index = int(tier)
        if not 0 <= index < len(tiers):
            raise BadDataError(f"{path} has {len(tiers)} interval tier(s) ({', '.join(names)}); tier {index} does "
                               "not exist (tiers count from 0)")
        return tiers[index]
    if tier is not None:
        if tier not in names:
            raise BadDataError(f"{path} has no tier '{tier}': its interval tiers are {', '.join(names)}")
        return tiers[names.index(tier)]
    named = [t for t in tiers if t["name"].strip().lower() in WORD_TIER_NAMES]
    if len(named) == 1 or len(tiers) == 1:
        return (named or tiers)[0]
    raise BadDataError(f"{path}: cannot tell which tier holds the words ({', '.join(names)}); give its name or "
                       "index as the 'tier' option of the stimulus specification")
