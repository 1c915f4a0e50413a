"""Word timings stored as BIDS events (the project's native input format).

Rows with ``trial_type == "word"`` (or every row when there is no
``trial_type`` column) and a ``word`` column; ``onset`` and ``duration`` in
seconds from the start of the run's first volume.
"""

import pandas as pd

from bids_encoding.errors import BadDataError

WORD_TRIAL_TYPE = "word"


def read_word_events(events_path):
    """Read the word events of one run.

    Parameters
    ----------
    events_path : str or Path
        A BIDS ``_events.tsv`` file.

    Returns
    -------
    pandas.DataFrame
        Columns ``onset``, ``duration``, ``word``, sorted by onset; possibly empty.
    """
    try:
        events = pd.read_csv(events_path, sep="\t", na_values=["n/a"], keep_default_na=False,
                             dtype={"word": str, "trial_type": str})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise BadDataError(f"cannot read events file {events_path}: {error}") from error
    missing = [column for column in ("onset", "duration", "word") if column not in events.columns]
    if missing:
        raise BadDataError(
            f"events file {events_path} has no column {', '.join(missing)}: word timings need "
            "'onset', 'duration', 'trial_type' = 'word' and 'word' (see docs/input-format.md)"
        )
    if "trial_type" in events.columns:
        events = events[events["trial_type"] == WORD_TRIAL_TYPE]
    events = events[["onset", "duration", "word"]].copy()
    for column in ("onset", "duration"):
        values = pd.to_numeric(events[column], errors="coerce")
        bad = values.isna() & events[column].notna()
        if bad.any() or values.isna().any():
            row = int(events.index[values.isna()][0]) + 2
            raise BadDataError(
                f"events file {events_path} line {row}: '{column}' must be a number of seconds"
            )
        events[column] = values.astype(float)
    events["word"] = events["word"].fillna("").astype(str)
    return events.sort_values("onset", kind="stable").reset_index(drop=True)
