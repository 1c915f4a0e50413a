"""Training-data scaling (``--data-scaling``): each outer fold refitted on nested random subsets of its training
stimuli, always tested on the same held-out stimulus (Antonello, Vaidya & Huth 2023, RQ2: the encoding performance
against the amount of training data)."""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bids_encoding.errors import UsageError

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataScaling:
    """Which training subsets are fitted.

    Attributes
    ----------
    sizes : tuple of int
        Numbers of training stimuli; empty: 1, 2, 4, ... and all (the outer fold's training stimuli).
    draws : int
        Random subsets per size (one for all the training stimuli).
    seed : int
    """

    sizes: tuple = ()
    draws: int = 3
    seed: int = 0

    def sizes_for(self, n_train):
        """The sizes fitted with ``n_train`` training stimuli (larger ones left out)."""
        if self.sizes:
            return sorted({size for size in self.sizes if size <= n_train})
        return sorted({2 ** k for k in range(int(np.log2(n_train)) + 1)} | {n_train})

    def record(self):
        return {"Sizes": list(self.sizes) or "1, 2, 4, ... and all the training stimuli of each outer fold",
                "Draws": self.draws, "Seed": self.seed,
                "Subsets": "random training stimuli (all presentations of each), drawn per outer fold, size and draw; "
                           "the held-out stimulus is the outer fold's, as in the full fit"}


DATA_SCALING_COLUMNS = {
    "layer": {"Description": "The model's layer (the best mean inner-validation score of its full fit)"},
    "fold": {"Description": "The outer fold (its held-out stimulus), as in the full fit"},
    "n_stimuli": {"Description": "Training stimuli of the subset"},
    "n_scans": {"Description": "Training scans of the subset (after trimming)"},
    "draw": {"Description": "The random subset's number at this size"},
    "mean_r": {"Description": "Pearson r on the held-out stimulus, mean over the participant's mask"},
    "mean_r2": {"Description": "R² on the held-out stimulus, mean over the participant's mask"},
    "mean_r_top10": {"Description": "Mean r of the top 10% of voxels"},
}


def data_scaling_rows(batch, designs, layer, settings):
    """Each participant's rows: per outer fold, training size and draw, the held-out scores over its mask.

    Parameters
    ----------
    batch : Batch
    designs : list of array
        Each run's design at ``layer`` before delays across runs (:meth:`Batch.run_designs`); with
        ``delays_across_runs`` each subset's training runs are delayed stacked, as the full fit's.
    layer : int
    settings : DataScaling

    Returns
    -------
    dict
        ``{subject: pandas.DataFrame}`` with ``fold``, ``n_stimuli``, ``n_scans``, ``draw``, ``mean_r``,
        ``mean_r2``, ``mean_r_top10``.
    """
    groups, keys = batch.sequence.groups, list(batch.sequence.keys)
    if len(groups) < 3:
        raise UsageError(f"--data-scaling needs at least 3 distinct stimuli (2 to train on), and {batch.label} heard "
                         f"{len(groups)}")
    rng = np.random.default_rng(settings.seed)
    folds = range(len(groups)) if batch.test_fold is None else [batch.test_fold]
    rows = {participant.subject: [] for participant in batch.participants}
    for fold in folds:
        others = [group for index, group in enumerate(groups) if index != fold]
        for size in settings.sizes_for(len(others)):
            for draw in range(settings.draws if size < len(others) else 1):
                chosen = sorted(rng.choice(len(others), size, replace=False))
                train = [run for index in chosen for run in others[index]]
                runs = train + list(groups[fold])
                delayed = batch.config.design.delayed_runs(designs, train, groups[fold])
                result = batch.ridge.fit_score([delayed[run] for run in runs], [batch.responses[run] for run in runs],
                                               [keys[run] for run in runs], folds=[len(chosen)])
                n_scans = sum(len(designs[run]) for index in chosen for run in others[index])
                for index, participant in enumerate(batch.participants):
                    if participant.on_surface:
                        continue
                    voxels = batch.voxels(index)
                    rows[participant.subject].append(_row(result, len(chosen), voxels, {
                        "layer": layer, "fold": fold, "n_stimuli": size, "n_scans": n_scans, "draw": draw}))
        LOGGER.info("%s: data scaling of outer fold %d done", batch.label, fold)
    return {subject: pd.DataFrame(table) for subject, table in rows.items()}


def _row(result, fold, voxels, about):
    r, r2 = result.test_r[fold, voxels], result.test_r2[fold, voxels]
    top = np.sort(r[np.isfinite(r)])[::-1]
    return {**about, "mean_r": float(np.nanmean(r)), "mean_r2": float(np.nanmean(r2)),
            "mean_r_top10": float(top[:max(1, len(top) // 10)].mean()) if len(top) else float("nan")}
