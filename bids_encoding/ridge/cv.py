"""Cross-validation schemes over runs.

Outer loop: leave one stimulus out. Runs that repeat the same stimulus form
one group and are held out together (otherwise the model would be trained on
the very stimulus it is tested on); their mean response is the test target.

Inner loop (choosing alphas, and layers), over the outer fold's training rows:

- ``loro``: leave one training stimulus out (default);
- ``single``: one validation run, the last training stimulus;
- ``first``: one validation run, the first training stimulus (Bonnasse-Gahot & Pallier's ``runs_train[0]``,
  ``fit_average_subject.py``);
- ``chunks``: ``n_chunks`` contiguous chunks of the training rows;
- ``bootstrap``: ``n_bootstraps`` random draws of chunks of ``chunk_length``
  scans held out together, a fraction ``held_out`` of the chunks each time
  (Huth lab);
- ``huth-bootstrap``: as Antonello et al.'s ``bootstrap_ridge`` (``ridge_utils/ridge.py``): the training rows
  cut into consecutive chunks of ``chunk_length`` (the last partial chunk always trains), shuffled by Python's
  ``random`` seeded with ``seed``, the first ``int(n_rows * held_out / chunk_length)`` held out; no repeats
  added.

With ``chunks`` and ``bootstrap``, the same scans of every other presentation
of a validation chunk's stimulus are held out (and scored) with it: a repeat
left in the inner training set would make the validation score optimistic.
"""

from dataclasses import dataclass

import numpy as np

# The penalties the inner cross-validation chooses among, and what it scores them on.
ALPHA_SCORE_NAMES = {"r": "validation Pearson r", "r2": "validation R²",
                     "huth-r2": "sign(R) sqrt(|R|), R = 1 - var(residual) / ((1 + var(y)) / 2) (Antonello et al.'s "
                                "bootstrap_ridge with use_corr=False)"}
ALPHA_SCORES = tuple(ALPHA_SCORE_NAMES)
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(0, 8, 17))


def _rows(ranges):
    return np.concatenate([np.arange(start, stop) for start, stop in ranges])


def leave_one_stimulus_out(cv, group_rows, n_rows):
    if len(group_rows) < 2:
        raise ValueError("inner leave-one-run-out needs at least 2 training stimuli")
    return [_rows(ranges) for ranges in group_rows]


def single_validation_run(cv, group_rows, n_rows):
    return [_rows(group_rows[-1])]


def first_validation_run(cv, group_rows, n_rows):
    return [_rows(group_rows[0])]


def contiguous_chunks(cv, group_rows, n_rows):
    bounds = np.linspace(0, n_rows, cv.n_chunks + 1).round().astype(int)
    return _with_repeats([np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])], group_rows, n_rows)


def bootstrap_chunks(cv, group_rows, n_rows):
    starts = np.arange(0, n_rows, cv.chunk_length)
    n_held = max(1, int(round(cv.held_out * len(starts))))
    rng = np.random.default_rng(cv.seed)
    sets = []
    for _ in range(cv.n_bootstraps):
        chosen = np.sort(rng.choice(starts, n_held, replace=False))
        sets.append(np.concatenate([np.arange(s, min(s + cv.chunk_length, n_rows)) for s in chosen]))
    return _with_repeats(sets, group_rows, n_rows)


def huth_bootstrap(cv, group_rows, n_rows):
    """``bootstrap_ridge``'s draws (ridge_utils/ridge.py:380-387), with ``random.Random(seed)`` for the global
    ``random`` their code shuffles with."""
    import random

    draw = random.Random(cv.seed)
    n_held = int(n_rows * cv.held_out / cv.chunk_length)
    if n_held < 1:
        raise ValueError(f"{n_rows} training scans hold no chunk of {cv.chunk_length} scans out "
                         f"at a fraction of {cv.held_out}")
    sets = []
    for _ in range(cv.n_bootstraps):
        chunks = list(zip(*[iter(range(n_rows))] * cv.chunk_length))
        draw.shuffle(chunks)
        sets.append(np.array([row for chunk in chunks[:n_held] for row in chunk]))
    return sets


@dataclass(frozen=True)
class InnerScheme:
    """How one inner scheme splits the training rows, and which :class:`InnerCV` fields it records;
    ``with_two_stimuli``: kept with one training stimulus (else contiguous chunks take its place)."""

    split: object
    recorded: dict
    with_two_stimuli: bool = False


# scheme name -> InnerScheme (sidecar key -> InnerCV field); a new scheme is one function and one entry here
INNER_SCHEMES = {
    "loro": InnerScheme(leave_one_stimulus_out, {}),
    "single": InnerScheme(single_validation_run, {}),
    "first": InnerScheme(first_validation_run, {}),
    "chunks": InnerScheme(contiguous_chunks, {"NumberOfChunks": "n_chunks"}),
    "bootstrap": InnerScheme(bootstrap_chunks, {"NumberOfBootstraps": "n_bootstraps", "ChunkLength": "chunk_length",
                                                "HeldOutFraction": "held_out", "Seed": "seed"}),
    "huth-bootstrap": InnerScheme(huth_bootstrap, {"NumberOfBootstraps": "n_bootstraps", "ChunkLength": "chunk_length",
                                                   "HeldOutFraction": "held_out", "Seed": "seed"},
                                  with_two_stimuli=True),
}


@dataclass(frozen=True)
class InnerCV:
    """Inner cross-validation scheme (see module docstring)."""

    scheme: str = "loro"
    n_chunks: int = 5
    n_bootstraps: int = 20
    chunk_length: int = 40
    held_out: float = 0.2
    seed: int = 0

    def __post_init__(self):
        if self.scheme not in INNER_SCHEMES:
            raise ValueError(f"inner CV scheme must be one of {', '.join(INNER_SCHEMES)}, not '{self.scheme}'")

    def record(self):
        recorded = INNER_SCHEMES[self.scheme].recorded
        return {"Scheme": self.scheme, **{key: getattr(self, name) for key, name in recorded.items()}}

    def validation_sets(self, group_rows, n_rows):
        """Validation rows of every inner split.

        Parameters
        ----------
        group_rows : list of list of (start, stop)
            Rows of each training stimulus group in the concatenated training data.
        n_rows : int

        Returns
        -------
        list of numpy.ndarray
            Row indices of each split's validation set (the rest trains).
        """
        return INNER_SCHEMES[self.scheme].split(self, group_rows, n_rows)


def _with_repeats(sets, group_rows, n_rows):
    """Each validation set grown by the same scans of every other presentation of its stimulus."""
    scan_of_stimulus = _scan_of_stimulus(group_rows, n_rows)
    return [np.flatnonzero(np.isin(scan_of_stimulus, scan_of_stimulus[rows])) for rows in sets]


def _scan_of_stimulus(group_rows, n_rows):
    """For every training row, an id shared by the same scan of every presentation of its stimulus."""
    ids = np.arange(n_rows)
    next_id = n_rows
    for ranges in group_rows:
        for start, stop in ranges:
            ids[start:stop] = next_id + np.arange(stop - start)
        next_id += max(stop - start for start, stop in ranges)
    return ids


def training_layout(designs, groups, test_group):
    """The training runs of an outer fold, in order, and the row ranges of each training stimulus group in
    their concatenation."""
    train_runs = [run for group in groups if group is not test_group for run in group]
    offsets = dict(zip(train_runs, np.cumsum([0] + [len(designs[run]) for run in train_runs])))
    group_rows = [[(offsets[run], offsets[run] + len(designs[run])) for run in group]
                  for group in groups if group is not test_group]
    return train_runs, group_rows


def split_one_stimulus(designs, responses, n_chunks, gap, min_scans=10):
    """Cut every presentation of a single stimulus into ``n_chunks`` contiguous chunks, drop ``gap`` scans
    after each border, and z-score each chunk; chunk ``j`` of every presentation gets key ``j``."""
    n_scans = len(designs[0])
    bounds = np.linspace(0, n_scans, n_chunks + 1).round().astype(int)
    starts = bounds[:-1] + np.r_[0, np.full(n_chunks - 1, gap)]
    if (bounds[1:] - starts).min() < min_scans:
        raise ValueError(f"a single stimulus of {n_scans} scans is too short for cross-validation: {n_chunks} "
                         f"chunks of at least {min_scans} scans with {gap} scans dropped between them need "
                         f"{n_chunks * min_scans + (n_chunks - 1) * gap}")
    from bids_encoding.ridge.scoring import zscore  # torch: not at module level (the parser reads this module)

    pieces = [(zscore(x[a:b]).astype(np.float32), zscore(y[a:b]).astype(np.float32), j)
              for j, (a, b) in enumerate(zip(starts, bounds[1:])) for x, y in zip(designs, responses)]
    return [p[0] for p in pieces], [p[1] for p in pieces], [p[2] for p in pieces]

