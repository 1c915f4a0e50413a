"""gentle forced-alignment output: ``align.csv`` and ``align.json`` (Narratives, ds002345).

``align.csv`` has no header: transcript word, aligned word, start, end. Words
gentle did not find in the audio have empty times; words it heard but could not
identify have the aligned word ``<unk>`` (the transcript word is kept). Times
count from the start of the stimulus audio file.
"""

import io
import json

import numpy as np
import pandas as pd

from bids_encoding.errors import BadDataError
from bids_encoding.inputs.timings.base import WordTimings, read_text, word_table

UNALIGNED = ("interpolate", "drop")


def read_gentle_csv(path, unaligned="interpolate"):
    """Words of an ``align.csv``; ``unaligned``: interpolate the missing times between aligned neighbours
    (words before the first or after the last aligned word are dropped) or drop those words."""
    try:
        table = pd.read_csv(io.StringIO(read_text(path)), header=None, dtype=str, keep_default_na=False,
                            names=["word", "aligned", "start", "end"], usecols=range(4))
    except (pd.errors.ParserError, ValueError) as error:
        raise BadDataError(f"cannot read gentle alignment {path}: {error} (expected 4 columns without a header: "
                           "word, aligned word, start, end)") from error
    return _timings(table["word"], table["aligned"], table["start"], table["end"], path, unaligned)


def read_gentle_json(path, unaligned="interpolate"):
    """Words of an ``align.json`` (``words``: ``word``, ``alignedWord``, ``start``, ``end``, ``case``)."""
    try:
        entries = json.loads(read_text(path))["words"]
    except (ValueError, KeyError, TypeError) as error:
        raise BadDataError(f"{path} is not a gentle align.json (no 'words' list): {error}") from error
    columns = {key: [entry.get(key, "") for entry in entries] for key in ("word", "alignedWord", "start", "end")}
    return _timings(columns["word"], columns["alignedWord"], columns["start"], columns["end"], path, unaligned)


def _timings(word, aligned, start, end, path, unaligned):
    if unaligned not in UNALIGNED:
        raise ValueError(f"unaligned must be one of {UNALIGNED}")
    word = pd.Series(word, dtype=object).fillna("").astype(str).str.strip()
    start = pd.to_numeric(pd.Series(start, dtype=object).replace("", np.nan), errors="coerce").to_numpy(float)
    end = pd.to_numeric(pd.Series(end, dtype=object).replace("", np.nan), errors="coerce").to_numpy(float)
    blank = (word == "").to_numpy()
    word, start, end = word[~blank].to_numpy(), start[~blank], end[~blank]
    missing = ~(np.isfinite(start) & np.isfinite(end))
    n_unknown = int(sum(str(a).strip() == "<unk>" for a in pd.Series(aligned, dtype=object)[~blank]))
    interpolated = 0
    if missing.any() and unaligned == "interpolate":
        start, end, interpolated = _interpolate(start, end, missing)
        missing = ~(np.isfinite(start) & np.isfinite(end))
    keep = ~missing
    timings = WordTimings(word_table(start[keep], end[keep], word[keep], path), str(path),
                          dropped=int(blank.sum() + missing.sum()), interpolated=interpolated)
    if interpolated or missing.any():
        timings.notes.append(f"{interpolated + int(missing.sum())} word(s) not found in the audio: "
                             f"{interpolated} interpolated, {int(missing.sum())} dropped")
    if n_unknown:
        timings.notes.append(f"{n_unknown} word(s) aligned as <unk>: the transcript word is kept")
    return timings


def _interpolate(start, end, missing):
    """Spread each stretch of unaligned words evenly over the gap between its aligned neighbours."""
    start, end = start.copy(), end.copy()
    count = 0
    index = 0
    while index < len(start):
        if not missing[index]:
            index += 1
            continue
        stop = index
        while stop < len(start) and missing[stop]:
            stop += 1
        if index > 0 and stop < len(start):
            edges = np.linspace(end[index - 1], max(start[stop], end[index - 1]), stop - index + 1)
            start[index:stop], end[index:stop] = edges[:-1], edges[1:]
            count += stop - index
        index = stop
    return start, end, count
