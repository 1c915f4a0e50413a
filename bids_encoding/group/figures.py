"""SVG figures of the group level, in the reports' style (:mod:`bids_encoding.reports.style`); numbers stay in
the tables, so figure titles carry none."""

import numpy as np

from bids_encoding.group.scaling import confidence_band
from bids_encoding.reports.style import COLORS, figure, label, model_display, parameter_axis, save_svg


def scaling_figure(scores, fits, measures, path, baselines=None, ylabel="mean r on held-out data"):
    """Score vs parameters (log scale): one grey line per participant, the group mean per model, the group
    fit with its pointwise bootstrap band (resampling participants, as the slope's CI in ``fits``), and the
    baselines as dashed lines."""
    fig, axes = figure(1, len(measures), figsize=(3.6 * len(measures), 3.2), squeeze=False)
    for axis, measure in zip(axes[0], measures):
        for _, rows in scores.groupby("participant"):
            rows = rows.sort_values("log10_params")
            axis.plot(rows["log10_params"], rows[measure], color=COLORS["participant"], lw=0.8)
        mean = scores.groupby("log10_params")[measure].mean()
        axis.plot(mean.index, mean.values, "o", color=COLORS["whole"], label="group mean")
        fit = fits[(fits["measure"] == measure) & (fits["level"] == "group") & (fits["family"] == "all")
                   & (fits["predictor"] == "log10_params")]
        if not fit.empty:
            fit = fit.iloc[0]
            x = np.linspace(mean.index.min(), mean.index.max(), 50)
            axis.plot(x, fit["intercept"] + fit["slope"] * x, color=COLORS["whole"], label="group fit")
            low, high = confidence_band(scores, measure, x, n_bootstraps=int(fit["n_bootstraps"]),
                                        confidence=float(fit["confidence"]), seed=int(fit["seed"]))
            axis.fill_between(x, low, high, color=COLORS["whole"], alpha=0.2, label="confidence band")
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
