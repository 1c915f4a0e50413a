"""The participant report's figures: word timelines, layer curves and brain maps, in the report style."""

import numpy as np

from bids_encoding.reports.style import COLORS, figure, png_uri, save_svg


def timeline_figure(runs, path=None):
    """Each run's words against its scans: the scan span (trimmed scans lighter), one tick per word.

    Parameters
    ----------
    runs : list of dict
        ``name``, ``n_scans``, ``repetition_time``, ``trim_start``, ``trim_end``, ``onsets`` (s, on the scan's
        clock).
    """
    fig, axis = figure(figsize=(7.5, 0.45 * len(runs) + 0.9))
    for row, run in enumerate(runs):
        tr, n = run["repetition_time"], run["n_scans"]
        axis.barh(row, n * tr, height=0.6, color="#e8e8e8", edgecolor="none")
        kept = (run["trim_start"] * tr, (n - run["trim_end"]) * tr)
        axis.barh(row, kept[1] - kept[0], left=kept[0], height=0.6, color="#c9d6e3", edgecolor="none")
        onsets = np.asarray(run["onsets"], dtype=float)
        axis.vlines(onsets, row - 0.25, row + 0.25, color=COLORS["whole"], lw=0.3)
        late = onsets[onsets > n * tr]
        if len(late):
            axis.vlines(late, row - 0.3, row + 0.3, color=COLORS["left"], lw=0.8)
    axis.set_yticks(range(len(runs)), [run["name"] for run in runs], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("time from the first scan (s)")
    return save_svg(fig, path)


def layer_curve(layers, chosen=None):
    """Mean r per layer (whole mask, left, right), the layer chosen most often by inner validation marked."""
    fig, axis = figure(figsize=(4.6, 2.8))
    x = layers["layer"].astype(int)
    for column, name, color in (("mean_r", "whole brain", COLORS["whole"]), ("mean_r_left", "left", COLORS["left"]),
                                ("mean_r_right", "right", COLORS["right"])):
        if column in layers and layers[column].notna().any():
            axis.plot(x, layers[column], "o-", ms=3, color=color, label=name)
    if chosen is not None:
        axis.axvline(chosen, ls="--", lw=0.8, color="k")
        axis.annotate("chosen most often\n(inner validation)", (chosen, axis.get_ylim()[1]), fontsize=7,
                      va="top", ha="left", xytext=(3, 0), textcoords="offset points")
    from matplotlib.ticker import MaxNLocator

    axis.set_xlabel("layer (0 = embeddings)")
    axis.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))  # 31 layers would overprint
    axis.set_ylabel("mean r on held-out data")
    axis.legend(frameon=False, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, fontsize=7)
    return save_svg(fig)


# Below nilearn's colour-bar tick cut (1e-6): the voxels outside the mask (exactly 0) are left transparent, so the
# underlay shows there, and no threshold tick is drawn over the 0 tick.
OUTSIDE = 1e-7


def brain_map(img, template_space, vmax=None, cmap="RdBu_r", symmetric=True, threshold=None):
    """A map as a PNG data URI: a row of axial slices with their z coordinates and L/R marks, over the MNI152
    template where the map is in a template space; there, below it, a glass brain from the left, the top and the
    right (both hemispheres). The report's caption says what the map is."""
    from nilearn import plotting

    data = np.asarray(img.dataobj, dtype=float)
    finite = data[np.isfinite(data) & (data != 0)]
    vmax = vmax or (float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0) or 1.0
    threshold = OUTSIDE if threshold is None else threshold
    slices = 0.45 if template_space else 1.0  # the share of the figure's height the slices take

    def draw(fig):
        plotting.plot_stat_map(img, **({} if template_space else {"bg_img": None}), display_mode="z",
                               cut_coords=7, figure=fig, axes=(0, 1 - slices, 1, slices), cmap=cmap, vmax=vmax,
                               symmetric_cbar=symmetric, threshold=threshold, colorbar=True,
                               annotate=True, draw_cross=False, black_bg=False, cbar_tick_format="%.2g")
        if template_space:
            plotting.plot_glass_brain(img, figure=fig, axes=(0, 0, 0.92, 1 - slices), display_mode="lzr",
                                      cmap=cmap, vmax=vmax, plot_abs=False, symmetric_cbar=symmetric,
                                      threshold=threshold, colorbar=False, annotate=True)

    return png_uri(draw, width=11.0, height=2.0 / slices, dpi=100)
