"""The group's training-data scaling (``--data-scaling`` at the participant level): each model's held-out score
against log10(training scans), with bootstrap CIs over participants, as the model-size law
(:func:`~bids_encoding.group.scaling.scaling_fit`)."""

import numpy as np
import pandas as pd

from bids_encoding.group.scaling import scaling_fit

DATA_MEASURES = ("mean_r", "mean_r_top10", "mean_r2")
DATA_SCORE_COLUMNS = ["participant", "model", "n_stimuli", "n_scans", "log10_scans", "n_fits", *DATA_MEASURES]


def data_scaling_scores(members):
    """Per participant, model and training size: the scores averaged over outer folds and draws."""
    rows = []
    for result in members:
        for model, path in sorted(result.data_scaling.items()):
            table = pd.read_csv(path, sep="\t")
            for size, subset in table.groupby("n_stimuli"):
                n_scans = float(subset["n_scans"].mean())
                rows.append({"participant": f"sub-{result.subject}", "model": model, "n_stimuli": int(size),
                             "n_scans": n_scans, "log10_scans": float(np.log10(n_scans)), "n_fits": len(subset),
                             **{measure: float(subset[measure].mean()) for measure in DATA_MEASURES}})
    return pd.DataFrame(rows, columns=DATA_SCORE_COLUMNS)


def data_scaling_fits(scores, n_bootstraps=2000, seed=0):
    """Per model and measure, the participants' and the group's line of the score against log10(training scans)
    (the training sizes take the place of the model sizes in :func:`scaling_fit`)."""
    rows = []
    for model, subset in scores.groupby("model"):
        sizes = subset.assign(model=subset["n_stimuli"].astype(str))
        for measure in DATA_MEASURES:
            try:
                fitted = scaling_fit(sizes, measure, "log10_scans", n_bootstraps, seed=seed)
            except ValueError:
                continue
            rows.extend({**row, "model": model, "n_sizes": row.pop("n_models", None)} for row in fitted)
    columns = ["model", "measure", "predictor", "level", "participant", "slope", "intercept", "ci_low", "ci_high",
               "confidence", "n_bootstraps", "seed", "t", "p", "n_participants", "n_sizes", "r_across_models"]
    table = pd.DataFrame(rows, columns=columns).rename(columns={"r_across_models": "r_across_sizes"})
    return table.astype({"n_participants": "Int64", "n_sizes": "Int64", "n_bootstraps": "Int64", "seed": "Int64"})
