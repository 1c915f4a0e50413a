"""Word timings in the formats real datasets keep them, behind one registry.

Every reader takes a file and its options and returns a :class:`WordTimings`:
a table with columns ``onset``, ``offset``, ``duration`` and ``word`` (seconds
from the start of the annotation's audio, sorted by onset) and the counts of
what it dropped or interpolated, so that nothing is lost silently.

==============  ============================================================
format          file
==============  ============================================================
``events``      BIDS ``_events.tsv`` word rows (times from the first volume)
``textgrid``    Praat TextGrid, long or short text format (one tier)
``lpp-csv``     Le Petit Prince ``lpp<LANG>_word_information.csv``
``gentle-csv``  gentle ``align.csv`` (no header: word, aligned word, start, end)
``gentle-json`` gentle ``align.json``
``table``       any TSV/CSV with ``onset``, ``offset`` (or ``duration``), ``word``
==============  ============================================================

A new format is one module with a reader function and one entry in ``READERS``.
"""

from bids_encoding.inputs.timings.base import WordTimings, word_table
from bids_encoding.inputs.timings.events import read_events
from bids_encoding.inputs.timings.gentle import read_gentle_csv, read_gentle_json
from bids_encoding.inputs.timings.lpp import read_lpp_csv
from bids_encoding.inputs.timings.table import read_table
from bids_encoding.inputs.timings.textgrid import DEFAULT_NON_WORDS, read_textgrid

READERS = {
    "events": read_events,
    "textgrid": read_textgrid,
    "lpp-csv": read_lpp_csv,
    "gentle-csv": read_gentle_csv,
    "gentle-json": read_gentle_json,
    "table": read_table,
}


def read_timings(path, fmt, **options):
    """Read one annotation file with the reader registered for ``fmt``.

    Returns
    -------
    WordTimings
    """
    if fmt not in READERS:
        raise ValueError(f"unknown word-timing format '{fmt}': use one of {', '.join(READERS)}")
    return READERS[fmt](path, **options)


__all__ = ["DEFAULT_NON_WORDS", "READERS", "WordTimings", "read_timings", "word_table"]
