"""SVG figures of the group level (for the HTML reports)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bids_encoding.group.scaling import confidence_band  # noqa: E402


def scaling_figure(scores, fits, measures, path, baselines=None):
    """Score vs log10(parameters): one line per participant, the group fit with its pointwise bootstrap band
    (resampling participants, as the slope's CI in ``fits``)."""
    fig, axes = plt.subplots(1, len(measures), figsize=(4 * len(measures), 3.4), squeeze=False)
    for axis, measure in zip(axes[0], measures):
        for _, rows in scores.groupby("participant"):
            rows = rows.sort_values("log10_params")
            axis.plot(rows["log10_params"], rows[measure], color="0.75", lw=0.8)
        mean = scores.groupby("log10_params")[measure].mean()
        axis.plot(mean.index, mean.values, "o", color="C0")
        fit = fits[(fits["measure"] == measure) & (fits["level"] == "group") & (fits["family"] == "all")
                   & (fits["predictor"] == "log10_params")]
        if not fit.empty:
            fit = fit.iloc[0]
            x = np.linspace(mean.index.min(), mean.index.max(), 50)
            axis.plot(x, fit["intercept"] + fit["slope"] * x, color="C0")
            low, high = confidence_band(scores, measure, x, n_bootstraps=int(fit["n_bootstraps"]),
                                        confidence=float(fit["confidence"]), seed=int(fit["seed"]))
            axis.fill_between(x, low, high, color="C0", alpha=0.2)
            axis.set_title(f"{measure}: slope {fit['slope']:.4f} [{fit['ci_low']:.4f}, {fit['ci_high']:.4f}]",
                           fontsize=8)
        if baselines is not None and not baselines.empty:
            for model, value in baselines.groupby("model")[measure].mean().items():
                axis.axhline(value, ls="--", lw=0.8, color="C3")
                axis.annotate(model, (axis.get_xlim()[0], value), fontsize=6, color="C3", va="bottom")
        axis.set_xlabel("log10(parameters)")
        axis.set_ylabel(measure)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def roi_figure(roi_table, path):
    """Mean L - R per ROI and model."""
    pivot = roi_table.groupby(["roi", "model"])["l_minus_r"].mean().unstack("model")
    fig, axis = plt.subplots(figsize=(6, 3.2))
    pivot.plot.bar(ax=axis, width=0.8)
    axis.axhline(0, color="k", lw=0.5)
    axis.set_ylabel("mean r, left - right")
    axis.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def glass_brain(image, path, title):
    """Glass-brain view of a map."""
    from nilearn import plotting

    display = plotting.plot_glass_brain(image, colorbar=True, plot_abs=False, title=title)
    display.savefig(str(path))
    display.close()
