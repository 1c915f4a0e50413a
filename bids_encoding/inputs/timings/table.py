"""Any TSV or CSV with ``onset``, ``offset`` (or ``duration``) and ``word`` columns, with a header row."""

import io

import pandas as pd

from bids_encoding.errors import BadDataError
from bids_encoding.inputs.timings.base import WordTimings, read_text, word_table


def read_table(path, word_column="word"):
    """Rows with an empty word are dropped (and counted)."""
    try:
        table = pd.read_csv(io.StringIO(read_text(path)), sep=None, engine="python", dtype=str,
                            keep_default_na=False, na_values=["n/a"])
    except (pd.errors.ParserError, ValueError) as error:
        raise BadDataError(f"cannot read {path}: {error}") from error
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "offset" not in table.columns and "duration" in table.columns:
        table["offset"] = pd.to_numeric(table["onset"], errors="coerce") + pd.to_numeric(table["duration"],
                                                                                         errors="coerce")
    missing = [c for c in ("onset", "offset", word_column) if c not in table.columns]
    if missing:
        raise BadDataError(f"{path} has no column {', '.join(missing)}: a word table needs onset, offset "
                           f"(or duration) and {word_column}")
    blank = table[word_column].fillna("").str.strip() == ""
    kept = table[~blank]
    return WordTimings(word_table(kept["onset"], kept["offset"], kept[word_column], path), str(path),
                       dropped=int(blank.sum()))
