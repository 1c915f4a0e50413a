"""One figure style for every figure of both levels, the words that name each measure, and figures as inline
HTML (SVG text for plots, PNG data URIs for brain images)."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 7, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100,
         "svg.fonttype": "none", "font.family": "DejaVu Sans"}
COLORS = {"whole": "#1f4e79", "left": "#c0392b", "right": "#2e86c1", "baseline": "#7f7f7f", "participant": "#bbbbbb",
          "l_minus_r": "#8e44ad"}
LABELS = {
    "mean_r": "mean r, whole brain",
    "mean_r_left": "mean r, left hemisphere",
    "mean_r_right": "mean r, right hemisphere",
    "mean_r_top10": "mean r, top 10% of voxels",
    "mean_r_reliable": "mean r, reliable voxels",
    "left": "mean r, left hemisphere",
    "right": "mean r, right hemisphere (mirror voxels)",
    "l_minus_r": "mean r, left − right",
    "left_reliable": "mean r, left reliable voxels",
    "right_reliable": "mean r, right reliable voxels",
    "l_minus_r_reliable": "mean r, left − right (reliable voxels)",
    "unique_r2": "unique R² (joint model)",
    "split_r": "split r (joint model)",
    "split_r2": "split R² (joint model)",
    "log10_params": "parameters",
    "n_layers": "layers",
    "hidden_size": "hidden size",
}


def label(name):
    """Words for a measure or column name (the name itself when there are none)."""
    return LABELS.get(name, name.replace("_", " "))


def model_name(model_id):
    """A model as a paper names it: its hub id, or the file or folder name of a local copy (never a path of the
    machine it ran on); an ``untrained:`` prefix is kept."""
    from pathlib import Path

    prefix = "untrained:" if str(model_id).startswith("untrained:") else ""
    inner = str(model_id).removeprefix(prefix)
    return prefix + (Path(inner).name if inner.startswith(("/", ".")) or inner.endswith(".gguf") else inner)


def model_display(model_id, baseline, speech=False):
    """``(name, kind)`` of a model as the reports and figures show it: :func:`model_name` (``, untrained`` after
    it rather than a prefix) and ``language model``, ``speech model``, ``untrained`` or ``baseline``."""
    name = model_name(model_id)
    if name.startswith("untrained:"):
        return f"{name.removeprefix('untrained:')}, untrained", "untrained"
    return name, "baseline" if baseline else "speech model" if speech else "language model"


def model_names(table):
    """``{label: name}`` of the models of a table with ``model``, ``model_id`` and ``baseline`` columns."""
    return {row.model: model_display(row.model_id, row.baseline)[0] for row in table.drop_duplicates("model")
            .itertuples()}


def parameters(count):
    """``124M``, ``1.5B``: a parameter count in words."""
    count = float(count)
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return f"{count:.0f}"


def parameter_axis(axis, sizes=None):
    """An x axis in log10(parameters) labelled with parameter counts (ticks at the models' ``sizes``, as
    log10 values, when given)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    if sizes is not None and len(sizes):
        axis.xaxis.set_major_locator(FixedLocator(sorted(set(sizes))))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: parameters(10 ** value)))
    axis.set_xlabel(label("log10_params"))


def figure(*args, **kwargs):
    """``plt.subplots`` in the report style."""
    with plt.rc_context(STYLE):
        return plt.subplots(*args, **kwargs)


def save_svg(fig, path=None):
    """Write the figure as SVG to ``path``, or return the SVG text (for inline HTML); the figure is closed."""
    with plt.rc_context(STYLE):
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, format="svg")
            plt.close(fig)
            return path
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def png_uri(draw, width=7.0, height=2.6, dpi=90):
    """A PNG data URI of what ``draw(figure)`` plots (nilearn displays need a figure)."""
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(width, height))
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
