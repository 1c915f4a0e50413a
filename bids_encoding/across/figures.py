"""The datasets level's figures, in the reports' style."""

import numpy as np

from bids_encoding.reports.style import COLORS, figure, save_svg


def forest_plot(table, path, xlabel="slope: mean r per decade of parameters"):
    """Each dataset's estimate with its 95% interval (t with n − 1 degrees of freedom, from its variance) and
    the combined estimate with its Knapp-Hartung interval (a diamond), one row each, as in meta-analyses."""
    from scipy import stats

    rows = table.reset_index(drop=True)
    fig, axis = figure(figsize=(6.0, 0.5 * len(rows) + 1.2))
    for position, row in enumerate(rows.itertuples()):
        y = len(rows) - 1 - position
        if row.dataset == "combined":
            axis.fill([row.ci_low, row.estimate, row.ci_high, row.estimate], [y, y + 0.25, y, y - 0.25],
                      color=COLORS["whole"])
            continue
        half = stats.t.ppf(0.975, max(row.n_participants - 1, 1)) * np.sqrt(row.variance)
        axis.errorbar(row.estimate, y, xerr=half, fmt="s", color=COLORS["participant"] if not row.flagged
                      else COLORS["baseline"], ecolor="0.4", capsize=3)
    axis.axvline(0, color="k", lw=0.5)
    axis.set_yticks(range(len(rows)), [f"{name} (n = {n})" for name, n in
                                       zip(rows["dataset"][::-1], rows["n_participants"][::-1])])
    axis.set_xlabel(xlabel)
    return save_svg(fig, path)
