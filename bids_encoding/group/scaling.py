"""Scaling laws: score = a + b log10(parameters), per participant and for the group.

The group slope is fitted to the mean over participants of each model's
score. Its confidence interval comes from resampling participants with
replacement (bootstrap): slope +- t(n-1) x the bootstrap standard error, scaled
by sqrt(n / (n - 1)). With the 12 or so participants of a typical dataset the
plain percentile interval is too narrow (91% coverage of a planted slope for a
nominal 95%, over 200 simulated datasets of 12 participants; this interval:
95.5%). The test of b != 0 is a one-sample t-test on the participants' own
slopes. One participant gives neither (n/a).
"""

import numpy as np
import pandas as pd
from scipy import stats

FIT_COLUMNS = ["measure", "predictor", "family", "level", "participant", "slope", "intercept", "ci_low", "ci_high",
               "confidence", "n_bootstraps", "seed", "t", "p", "n_participants", "n_models", "r_across_models"]


def fit_line(x, y):
    """Least-squares slope and intercept of ``y = a + b x``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _wide(table, measure, predictor):
    """Participants x models matrix of ``measure`` and the models' ``predictor`` values."""
    wide = table.pivot_table(index="participant", columns="model", values=measure)
    x = table.groupby("model")[predictor].first().reindex(wide.columns).to_numpy(dtype=float)
    if len(np.unique(x)) < 2:
        raise ValueError(f"scaling needs models of at least 2 sizes (got {len(np.unique(x))})")
    return wide, x


def resampled_means(data, n_bootstraps, seed):
    """``(n_bootstraps, n_models)`` means over participants (rows of ``data``) resampled with replacement."""
    rng = np.random.default_rng(seed)
    return np.array([np.nanmean(data[rng.integers(0, len(data), len(data))], axis=0)
                     for _ in range(n_bootstraps)])


def bootstrap_lines(wide, x, n_bootstraps, seed):
    """Group-mean lines on participants resampled with replacement.

    Parameters
    ----------
    wide : pandas.DataFrame
        Participants x models scores.
    x : numpy.ndarray
        The models' predictor values.

    Returns
    -------
    numpy.ndarray
        ``(n_bootstraps, 2)``: slope and intercept of each resample's line.
    """
    return np.array([fit_line(x, means) for means in resampled_means(wide.to_numpy(), n_bootstraps, seed)])


def bootstrap_interval(estimate, resamples, n_participants, confidence=0.95):
    """``estimate`` +- t(n-1) x the small-sample corrected standard error of its bootstrap ``resamples``
    (along axis 0); NaN with fewer than 2 participants."""
    if n_participants < 2:
        return np.full(np.shape(estimate), np.nan), np.full(np.shape(estimate), np.nan)
    error = np.std(resamples, axis=0, ddof=1) * np.sqrt(n_participants / (n_participants - 1))
    half_width = stats.t.ppf((1 + confidence) / 2, n_participants - 1) * error
    return estimate - half_width, estimate + half_width


def confidence_band(table, measure, grid, predictor="log10_params", n_bootstraps=2000, confidence=0.95, seed=0):
    """Pointwise bootstrap confidence band of the group line at ``grid``: ``(low, high)`` arrays."""
    wide, x = _wide(table, measure, predictor)
    slope, intercept = fit_line(x, wide.mean(axis=0).to_numpy())
    grid = np.asarray(grid, dtype=float)
    lines = bootstrap_lines(wide, x, n_bootstraps, seed)
    values = lines[:, 1:2] + lines[:, 0:1] * grid[None, :]
    return bootstrap_interval(intercept + slope * grid, values, len(wide), confidence)


def scaling_fit(table, measure, predictor="log10_params", n_bootstraps=2000, confidence=0.95, seed=0):
    """Fit ``measure`` against ``predictor`` across models.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per participant and model, with columns ``participant``,
        ``model``, ``measure`` and ``predictor``.

    Returns
    -------
    rows : list of dict
        One row per participant and one for the group: slope, intercept,
        and for the group the bootstrap CI, the t-test and the correlation
        across models.
    """
    wide, x = _wide(table, measure, predictor)
    rows = []
    slopes = []
    for participant, values in wide.iterrows():
        keep = values.notna().to_numpy()
        slope, intercept = fit_line(x[keep], values.to_numpy()[keep])
        slopes.append(slope)
        rows.append({"measure": measure, "predictor": predictor, "level": "participant",
                     "participant": participant, "slope": slope, "intercept": intercept})
    mean = wide.mean(axis=0).to_numpy()
    slope, intercept = fit_line(x, mean)
    boot = bootstrap_lines(wide, x, n_bootstraps, seed)[:, 0]
    low, high = bootstrap_interval(slope, boot, len(slopes), confidence)
    t_value, p_value = (stats.ttest_1samp(slopes, 0.0) if len(slopes) > 1 and np.std(slopes) > 0
                        else (float("nan"), float("nan")))
    rows.append({"measure": measure, "predictor": predictor, "level": "group", "participant": "group",
                 "slope": slope, "intercept": intercept, "ci_low": float(low), "ci_high": float(high),
                 "confidence": confidence, "n_bootstraps": n_bootstraps, "seed": seed, "t": float(t_value),
                 "p": float(p_value), "n_participants": len(slopes), "n_models": len(x),
                 "r_across_models": float(np.corrcoef(x, mean)[0, 1])})
    return rows


def speech_models(table):
    """The rows of speech models (``modality`` ``speech``)."""
    return table[table["modality"] == "speech"] if "modality" in table else table.iloc[:0]


def language_models(table):
    """The rows of language models (every row, without a ``modality`` column): the model-size law of language
    models, which the speech models' sizes would mix (Antonello et al. fit the two apart)."""
    return table[table["modality"] != "speech"] if "modality" in table else table


def scaling_table(scores, measures, predictors, n_bootstraps=2000, seed=0):
    """All fits of ``measures`` x ``predictors`` (and per model family), as one table. Family ``all`` is every
    language model; with speech models (``modality``), family ``speech`` is every speech model (the two laws are
    fitted apart, as Antonello et al. do); the other families are the architectures."""
    rows = []
    speech = speech_models(scores)
    kinds = [("all", language_models(scores))] + ([("speech", speech)] if not speech.empty else [])
    for predictor in predictors:
        for measure in measures:
            for family, subset in kinds:
                try:
                    rows.extend({**row, "family": family} for row in
                                scaling_fit(subset, measure, predictor, n_bootstraps, seed=seed))
                except ValueError:
                    continue
        if predictor != "log10_params":
            continue
        for family, subset in scores.groupby("family"):
            for measure in measures:
                try:
                    rows.extend({**row, "family": family} for row in
                                scaling_fit(subset, measure, predictor, n_bootstraps, seed=seed))
                except ValueError:
                    continue
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


MULTIPLE_PREDICTORS = ("log10_params", "n_layers", "hidden_size")
MULTIFIT_COLUMNS = ["measure", "term", "coefficient", "ci_low", "ci_high", "confidence", "n_bootstraps",
                    "n_participants", "n_models", "r2"]


def multiple_fit(table, measure, predictors=MULTIPLE_PREDICTORS, n_bootstraps=2000, confidence=0.95, seed=0):
    """Ordinary least squares of the group-mean ``measure`` on several model properties at once
    (Bonnasse-Gahot & Pallier: log parameters, layers and hidden size), with bootstrap CIs over participants.

    Returns
    -------
    list of dict
        One row per term (the intercept included); empty when there are too
        few distinct models (fewer than the terms + 2).
    """
    wide = table.pivot_table(index="participant", columns="model", values=measure)
    properties = table.groupby("model")[list(predictors)].first().reindex(wide.columns)
    design = np.column_stack([np.ones(len(properties)), properties.to_numpy(dtype=float)])
    if len(wide.columns) < design.shape[1] + 2 or np.linalg.matrix_rank(design) < design.shape[1]:
        return []
    coefficients = np.linalg.lstsq(design, wide.mean(axis=0).to_numpy(), rcond=None)[0]
    resamples = np.linalg.lstsq(design, resampled_means(wide.to_numpy(), n_bootstraps, seed).T, rcond=None)[0].T
    low, high = bootstrap_interval(coefficients, resamples, len(wide), confidence)
    fitted = design @ coefficients
    mean = wide.mean(axis=0).to_numpy()
    r2 = 1 - np.sum((mean - fitted) ** 2) / np.sum((mean - mean.mean()) ** 2)
    return [{"measure": measure, "term": term, "coefficient": float(c), "ci_low": float(lo), "ci_high": float(hi),
             "confidence": confidence, "n_bootstraps": n_bootstraps, "n_participants": len(wide),
             "n_models": len(wide.columns), "r2": float(r2)}
            for term, c, lo, hi in zip(("intercept",) + tuple(predictors), coefficients, low, high)]


def multiple_table(scores, measures, n_bootstraps=2000, seed=0):
    """:func:`multiple_fit` of every measure, as one table."""
    return pd.DataFrame([row for measure in measures for row in multiple_fit(scores, measure,
                                                                            n_bootstraps=n_bootstraps, seed=seed)],
                        columns=MULTIFIT_COLUMNS)
