"""SVG figures of the group level, in the reports' style (:mod:`bids_encoding.reports.style`); numbers stay in
the tables, so figure titles carry none."""

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter

from bids_encoding.group.scaling import confidence_band
from bids_encoding.reports.style import COLORS, figure, label, model_display, parameter_axis, save_svg


def scaling_figure(scores, fits, measures, path, baselines=None, ylabel="mean r on held-out data", family="all"):
    """Score vs parameters (log scale) of one law's models (``family``: ``all``, the language models, or
    ``speech``): one grey line per participant, the group mean per model, the group fit with its pointwise
    bootstrap band (resampling participants, as the slope's CI in ``fits``), and the baselines as dashed lines."""
    fig, axes = figure(1, len(measures), figsize=(3.6 * len(measures), 3.2), squeeze=False)
    for axis, measure in zip(axes[0], measures):
        fit = fits[(fits["measure"] == measure) & (fits["level"] == "group") & (fits["family"] == family)
                   & (fits["predictor"] == "log10_params")]
        _law_panel(axis, scores, fit, measure, "log10_params")
        if baselines is not None and not baselines.empty:
            for model_id, value in baselines.groupby("model_id")[measure].mean().items():
                axis.axhline(value, ls="--", lw=0.8, color=COLORS["baseline"])
                short = model_display(model_id, True)[0].split("/")[-1]  # no organisation: the panels are small
                axis.annotate(short, (axis.get_xlim()[0], value), fontsize=7,
                              color=COLORS["baseline"], va="bottom")
        axis.set_title(label(measure))
        parameter_axis(axis, scores["log10_params"].dropna().unique())
        axis.set_ylabel(ylabel)
    axes[0][-1].legend(frameon=True, framealpha=0.85, loc="best", fontsize=7)
    return save_svg(fig, path)


def data_scaling_figure(scores, fits, path, measure="mean_r_top10"):
    """The training-data law, one panel per model: score vs training scans (log scale), as :func:`scaling_figure`
    with the training sizes (``_datascaling.tsv``) in place of the model sizes."""
    models = sorted(scores["model"].unique())
    fig, axes = figure(1, len(models), figsize=(3.6 * len(models), 3.2), squeeze=False)
    for axis, model in zip(axes[0], models):
        sizes = scores[scores["model"] == model]
        sizes = sizes.assign(model=sizes["n_stimuli"].astype(str))  # each size is one "model" of the law
        fit = fits[(fits["model"] == model) & (fits["measure"] == measure) & (fits["level"] == "group")]
        _law_panel(axis, sizes, fit, measure, "log10_scans")
        axis.set_title(model)
        axis.xaxis.set_major_locator(FixedLocator(np.log10(sizes.groupby("n_stimuli")["n_scans"].mean())))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{10 ** value:.0f}"))
        axis.set_xlabel("training scans (log scale)")
        axis.set_ylabel(label(measure))
    axes[0][-1].legend(frameon=True, framealpha=0.85, loc="best", fontsize=7)
    return save_svg(fig, path)


def _law_panel(axis, scores, fit, measure, predictor):
    """One law on ``axis``: a grey line per participant, the group means, and the group ``fit`` (a one-row table,
    or empty) with its pointwise bootstrap band."""
    for _, rows in scores.groupby("participant"):
        rows = rows.sort_values(predictor)
        axis.plot(rows[predictor], rows[measure], color=COLORS["participant"], lw=0.8)
    mean = scores.groupby(predictor)[measure].mean()
    axis.plot(mean.index, mean.values, "o", color=COLORS["whole"], label="group mean")
    if fit.empty:
        return
    fit = fit.iloc[0]
    x = np.linspace(mean.index.min(), mean.index.max(), 50)
    axis.plot(x, fit["intercept"] + fit["slope"] * x, color=COLORS["whole"], label="group fit")
    low, high = confidence_band(scores, measure, x, predictor, n_bootstraps=int(fit["n_bootstraps"]),
                                confidence=float(fit["confidence"]), seed=int(fit["seed"]))
    axis.fill_between(x, low, high, color=COLORS["whole"], alpha=0.2, label="confidence band")


def roi_figure(roi_table, path, names=None):
    """Mean left − right r per language ROI and model (``names``: ``{label: name}`` for the legend)."""
    pivot = roi_table.groupby(["roi", "model"])["l_minus_r"].mean().unstack("model").rename(columns=names or {})
    fig, axis = figure(figsize=(7, 3.2))
    pivot.plot.bar(ax=axis, width=0.8, rot=0)
    axis.axhline(0, color="k", lw=0.5)
    axis.set_xlabel("language region (10 mm sphere and its mirror)")
    axis.set_ylabel("mean r, left − right")
    axis.legend(frameon=False, fontsize=7, ncol=2)
    return save_svg(fig, path)


def neuron_networks_figure(patterns, layers, path):
    """One model's neurons and networks: which network each pattern's map matches (fraction of participants),
    and how many neurons of each layer follow a pattern matched to each network."""
    panels = 2 if layers is not None and not layers.empty else 1
    fig, axes = figure(1, panels, figsize=(4.2 * panels, 3.4), squeeze=False)
    for axis, table, title, colorbar in ((axes[0][0], patterns, "patterns matched to networks", "participants"),
                                          (axes[0][-1], layers, "neurons per network by layer", "neurons")):
        if table is None or table.empty or (panels == 1 and table is layers):
            continue
        image = axis.imshow(table.to_numpy(dtype=float), aspect="auto", cmap="viridis", interpolation="nearest",
                            vmin=0)
        axis.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=45, ha="right", fontsize=7)
        axis.set_yticks(range(table.shape[0]), [str(i) for i in table.index], fontsize=6)
        axis.set_ylabel(table.index.name or "")
        axis.set_title(title)
        fig.colorbar(image, ax=axis, label=colorbar, shrink=0.8)
    return save_svg(fig, path)
