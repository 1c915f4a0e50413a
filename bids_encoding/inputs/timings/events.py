"""Word timings stored as BIDS events (the project's native input format).

Rows with ``trial_type == "word"`` (or every row when there is no
``trial_type`` column) and a ``word`` column; ``onset`` and ``duration`` in
seconds from the start of the run's first volume.
"""

import pandas as pd

from bids_encoding.errors import BadDataError
from bids_encoding.inputs.timings.base import WordTimings, word_table

WORD_TRIAL_TYPE = "word"


def read_events(path):
    """Word rows of one BIDS ``_events.tsv``, as :class:`WordTimings` (possibly empty)."""
    try:
        events = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                             dtype={"word": str, "trial_type": str})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise BadDataError(f"cannot read events file {path}: {error}") from error
    missing = [column for column in ("onset", "duration", "word") if column not in events.columns]
    if missing:
        raise BadDataError(
            f"events file {path} has no column {', '.join(missing)}: word timings need "
            "'onset', 'duration', 'trial_type' = 'word' and 'word' (or a stimulus specification, --stimuli; "
            "see docs/input-format.md)"
        )
    if "trial_type" in events.columns:
        events = events[events["trial_type"] == WORD_TRIAL_TYPE]
    for column in ("onset", "duration"):
        values = pd.to_numeric(events[column], errors="coerce")
        if values.isna().any():
            row = int(events.index[values.isna()][0]) + 2
            raise BadDataError(f"events file {path} line {row}: '{column}' must be a number of seconds")
        events = events.assign(**{column: values.astype(float)})
    words = word_table(events["onset"], events["onset"] + events["duration"], events["word"], path)
    return WordTimings(words, str(path))


def read_word_events(events_path):
    """Word rows of one run's events file: ``onset``, ``duration``, ``word`` (and ``offset``), sorted by onset."""
    return read_events(events_path).words
