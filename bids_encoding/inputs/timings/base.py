"""The word table every timing reader returns."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bids_encoding.errors import BadDataError

COLUMNS = ["onset", "offset", "duration", "word"]


@dataclass
class WordTimings:
    """Words of one annotation and what the reader changed.

    Attributes
    ----------
    words : pandas.DataFrame
        ``onset``, ``offset``, ``duration``, ``word``; seconds from the start
        of the annotation's audio (the run's first volume for ``events``).
    source : str
        The file read.
    dropped : int
        Rows dropped (non-words, blank words, words without times with ``unaligned="drop"``).
    interpolated : int
        Words whose times were interpolated between aligned neighbours.
    """

    words: pd.DataFrame
    source: str
    dropped: int = 0
    interpolated: int = 0
    notes: list = field(default_factory=list)

    def __post_init__(self):
        duplicated = self.words.duplicated(subset=["onset", "offset", "word"])
        if duplicated.any():
            self.words = self.words[~duplicated].reset_index(drop=True)
            self.dropped += int(duplicated.sum())
            self.notes.append(f"{int(duplicated.sum())} duplicate word row(s) (same word, onset and offset) dropped")

    def record(self):
        """What the sidecars say about the words."""
        return {"Source": self.source, "NumberOfWords": int(len(self.words)), "Dropped": self.dropped,
                "Interpolated": self.interpolated, **({"Notes": self.notes} if self.notes else {})}


def word_table(onset, offset, word, source):
    """Check times and build the sorted word table; ``BadDataError`` names the file and the first bad row."""
    onset = pd.to_numeric(pd.Series(onset, dtype=object), errors="coerce").to_numpy(float)
    offset = pd.to_numeric(pd.Series(offset, dtype=object), errors="coerce").to_numpy(float)
    word = pd.Series(word, dtype=object).fillna("").astype(str).str.strip().to_numpy()
    for name, values in (("onset", onset), ("offset", offset)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise BadDataError(f"{source}: word {bad[0] + 1} ('{word[bad[0]]}') has no {name} time: "
                               "every word needs an onset and an offset in seconds")
    backwards = np.flatnonzero(offset < onset)
    if backwards.size:
        raise BadDataError(f"{source}: word {backwards[0] + 1} ('{word[backwards[0]]}') ends before it starts")
    table = pd.DataFrame({"onset": onset, "offset": offset, "duration": offset - onset, "word": word},
                         columns=COLUMNS)
    return table.sort_values("onset", kind="stable").reset_index(drop=True)


def read_text(path):
    """A text file's contents; a UTF-8 byte-order mark is dropped, UTF-16 files (Praat writes them) decoded."""
    try:
        raw = open(path, "rb").read()
    except OSError as error:
        raise BadDataError(f"cannot read word timings {path}: {error.strerror}") from error
    for bom, encoding in ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"), (b"\xef\xbb\xbf", "utf-8-sig")):
        if raw.startswith(bom):
            return raw.decode(encoding)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
