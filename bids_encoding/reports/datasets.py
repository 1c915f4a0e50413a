"""The datasets level's report, ``datasets.html`` at the output root, built from ``datasets/`` only."""

from pathlib import Path

import nibabel as nib
import pandas as pd

from bids_encoding.derivatives.names import find
from bids_encoding.reports.figures import brain_map
from bids_encoding.reports.render import inline_svg, relative, render


def _table(files, suffix):
    path = next((p for n, p in files.items() if n.suffix == suffix and n.extension == ".tsv"), None)
    return (pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["n/a", ""]), path) if path else (None, None)


def write_datasets_report(output_dir, warnings=(), failure=None, log=None):
    """Write ``datasets.html``: the datasets and models combined, the scaling slopes side by side (forest plot),
    each region's combination with the datasets flagged, and the combined and heterogeneity maps."""
    output_dir = Path(output_dir)
    folder = output_dir / "datasets"
    files = find(folder) if folder.is_dir() else {}
    tables = {suffix: _table(files, suffix) for suffix in ("datasets", "models", "slopes", "rois")}
    rows = {suffix: (table.to_dict("records") if table is not None else []) for suffix, (table, _) in tables.items()}
    sources = {suffix: relative(path, output_dir) if path else None for suffix, (_, path) in tables.items()}
    forest = next((p for n, p in find(folder / "figures").items() if n.desc == "slopes"), None) \
        if (folder / "figures").is_dir() else None
    maps = []
    for name, path in files.items():
        if name.extension == ".nii.gz" and name.layer is None and name.stat in ("t", "i2"):
            what = {"t": "Knapp-Hartung t of the combined mean Fisher-z r", "i2": "I², heterogeneity"}[name.stat]
            asymmetry = ", left minus mirror right" if name.desc == "LminusR" else ""
            maps.append({"order": (name.model or "", name.desc or "", name.stat != "t"),
                         "caption": f"{name.model}{asymmetry}: {what}",
                         "image": brain_map(nib.load(path), True, symmetric=name.stat == "t",
                                            cmap="RdBu_r" if name.stat == "t" else "viridis")})
    maps.sort(key=lambda item: item["order"])
    regions = [row for row in rows["rois"] if row["dataset"] == "combined"]
    flagged = [row for row in rows["rois"] if row.get("flagged") in (True, "True", 1)]
    return render("datasets.html.j2", output_dir / "datasets.html", title="datasets", datasets=rows["datasets"],
                  models=rows["models"], slopes=rows["slopes"], regions=regions, flagged=flagged, maps=maps,
                  forest=inline_svg(forest) if forest else None, files=sources, warnings=list(warnings),
                  failure=failure, log=log, output_dir=output_dir,
                  sections=[("datasets", "Datasets"), ("slopes", "Scaling slopes"), ("regions", "Regions"),
                            ("maps", "Maps"), ("warnings", "Warnings")], versions={})
