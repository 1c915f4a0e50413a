"""Le Petit Prince ``annotation/<LANG>/lpp<LANG>_word_information.csv`` (ds003643).

Columns ``word, onset, offset, section`` (and others that are ignored); times
in seconds from the start of that section's audio. The files start with a
UTF-8 byte-order mark and hold blank and whitespace-only word rows.
"""

import io

import pandas as pd

from bids_encoding.errors import BadDataError
from bids_encoding.inputs.timings.base import WordTimings, read_text, word_table


def read_lpp_csv(path, section=None):
    """Words of one section (``section``: the run's rank from 1), or of the whole file when ``None``."""
    try:
        table = pd.read_csv(io.StringIO(read_text(path)), sep=None, engine="python", dtype=str,
                            keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise BadDataError(f"cannot read {path}: {error}") from error
    table.columns = [str(c).strip().lower() for c in table.columns]
    needed = ["word", "onset", "offset"] + (["section"] if section is not None else [])
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise BadDataError(f"{path} has no column {', '.join(missing)}: a Le Petit Prince word table has "
                           "word, onset, offset and section")
    if section is not None:
        sections = pd.to_numeric(table["section"], errors="coerce")
        available = sorted(int(s) for s in sections.dropna().unique())
        table = table[sections == int(section)]
        if table.empty:
            raise BadDataError(f"{path} has no words of section {section} (sections: "
                               f"{', '.join(map(str, available))}); a run's section is its rank among the "
                               "participant's runs ({rank}), not its run label")
    blank = table["word"].str.strip() == ""
    words = word_table(table.loc[~blank, "onset"], table.loc[~blank, "offset"], table.loc[~blank, "word"], path)
    return WordTimings(words, str(path), dropped=int(blank.sum()))
