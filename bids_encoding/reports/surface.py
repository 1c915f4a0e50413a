"""Maps on the cortical surface in the reports, from the GIFTI files on fsaverage5: lateral and medial views of both
hemispheres and a flat map of each (nilearn, on fsaverage5's inflated and flat meshes over its sulcal depth), and an
interactive viewer (nilearn's ``view_surf`` with its niivue engine; the page sits inside the report, its scripts
inline, so nothing is fetched)."""

import html
import json
import re

import nibabel as nib
import numpy as np
from markupsafe import Markup

from bids_encoding.derivatives.names import ANY, find
from bids_encoding.hemispheres import LANGUAGE_ROIS, ROI_RADIUS_MM
from bids_encoding.reports.pycortex import pycortex_flatmap
from bids_encoding.reports.style import png_uri
from bids_encoding.reports.truth import demo_truth
from bids_encoding.surface import HEMIS, N_VERTICES, fsaverage5, label_names, mesh, project, read_gifti, sphere_labels

VIEWS = (("L", "lateral"), ("L", "medial"), ("R", "medial"), ("R", "lateral"))
# Below nilearn's colour-bar tick cut, as the volume figures' OUTSIDE: vertices exactly 0 or n/a stay grey.
OUTSIDE = 1e-7
SULCUS, GYRUS = (0.55, 0.55, 0.55, 1.0), (0.8, 0.8, 0.8, 1.0)  # the flat maps' background, from the sulcal depth


def surface_files(folder, extension=".func.gii", **entities):
    """``{"L": path, "R": path}`` (or one of them) of a map (``.label.gii``: labels) on the surface in ``folder``,
    by its entities."""
    found = find(folder, hemi=ANY, extension=extension, **entities)
    return {name.hemi: path for name, path in found.items() if name.hemi}


def read_surface(files):
    """The values of each hemisphere's file (``{"L": path, ...}``); a hemisphere without a file is n/a."""
    return {hemi: read_gifti(files[hemi]).astype(float) if hemi in files else np.full(N_VERTICES, np.nan)
            for hemi in HEMIS}


def shared_vmax(maps, percentile=99):
    """One colour scale for several maps (``[{"L": values, "R": values}, ...]``): the ``percentile`` of |value|
    over their non-zero vertices."""
    values = np.concatenate([np.abs(np.asarray(v, dtype=float)).ravel() for m in maps for v in m.values()] or [[]])
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.percentile(values, percentile)) if values.size else 1.0


def surface_views(values, vmax, cmap="RdBu_r", symmetric=True, outlines=None, threshold=None):
    """A map on fsaverage5 as a PNG data URI: the lateral and medial views of the left and the right hemisphere
    (inflated), the flat map of each below, one colour bar; ``outlines`` (``{"L": labels, "R": labels}``, 0 for
    none) are drawn in black on every view."""
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors
    from nilearn import plotting

    _, sulc = fsaverage5()
    threshold = OUTSIDE if threshold is None else threshold
    norm = colors.Normalize(-vmax if symmetric else 0.0, vmax)
    colormap = plt.get_cmap(cmap)

    def draw_hemisphere(fig, axes, surface, hemi, view):
        data = np.nan_to_num(values[hemi])
        plotting.plot_surf_stat_map(mesh(surface, hemi), data, bg_map=sulc[hemi], hemi=HEMIS[hemi], view=view,
                                    axes=axes, figure=fig, colorbar=False, cmap=cmap, vmax=vmax,
                                    vmin=-vmax if symmetric else 0.0, symmetric_cbar=symmetric, threshold=threshold)
        labels = None if outlines is None else outlines.get(hemi)
        if labels is not None and np.any(labels):
            levels = [int(level) for level in np.unique(labels) if level != 0]
            plotting.plot_surf_contours(mesh(surface, hemi), labels, axes=axes, figure=fig, levels=levels,
                                        colors=["black"] * len(levels))

    def draw_flat(axes, hemi):
        # drawn in 2D, face by face (the mean of its vertices), so that the flat map fills its axes
        from matplotlib.collections import PolyCollection

        flat = mesh("flat", hemi)
        xy, faces = flat.coordinates[:, :2], flat.faces
        face_values = np.nan_to_num(values[hemi])[faces].mean(axis=1)
        shown = np.abs(face_values) >= threshold
        rgba = np.where((sulc[hemi][faces].mean(axis=1) > 0)[:, None], SULCUS, GYRUS)
        rgba[shown] = colormap(norm(face_values[shown]))
        axes.add_collection(PolyCollection(xy[faces], facecolors=rgba, edgecolors="none"))
        labels = None if outlines is None else outlines.get(hemi)
        for level in ([] if labels is None else [level for level in np.unique(labels) if level != 0]):
            axes.tricontour(xy[:, 0], xy[:, 1], faces, (labels == level).astype(float), levels=[0.5],
                            colors="black", linewidths=0.8)
        axes.autoscale_view()
        axes.set_aspect("equal")
        axes.axis("off")

    def draw(fig):
        for index, (hemi, view) in enumerate(VIEWS):
            axes = fig.add_axes((0.01 + index * 0.235, 0.5, 0.235, 0.5), projection="3d")
            draw_hemisphere(fig, axes, "inflated", hemi, view)
            axes.set_title(f"{'left' if hemi == 'L' else 'right'}, {view}", fontsize=9, y=0.92)
        for index, hemi in enumerate(HEMIS):
            axes = fig.add_axes((0.03 + index * 0.46, 0.0, 0.44, 0.5))
            draw_flat(axes, hemi)
            axes.set_title(f"{'left' if hemi == 'L' else 'right'}, flat", fontsize=9)
        bar = fig.add_axes((0.955, 0.12, 0.012, 0.3))
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=colormap), cax=bar)
        bar.tick_params(labelsize=8)

    return png_uri(draw, width=11.0, height=5.2, dpi=90)


def surface_viewer(values, vmax, title="", threshold=None):
    """An interactive view of a map on both inflated hemispheres (rotate, zoom): nilearn's ``view_surf`` page
    (niivue) inside an ``iframe`` of the report, its scripts inline; the icon link nilearn adds (the only thing it
    would fetch) left out."""
    from nilearn import plotting
    from nilearn.surface import SurfaceImage

    meshes, sulc = fsaverage5()
    inflated = meshes["inflated"]
    data = SurfaceImage(mesh=inflated, data={HEMIS[hemi]: np.nan_to_num(values[hemi]).astype(np.float32)
                                             for hemi in HEMIS})
    background = SurfaceImage(mesh=inflated, data={HEMIS[hemi]: sulc[hemi] for hemi in HEMIS})
    view = plotting.view_surf(inflated, surf_map=data, bg_map=background, hemi="both", vmax=vmax,
                              threshold=threshold, symmetric_cmap=True, title=title, title_fontsize=14,
                              engine="niivue")
    page = re.sub(r"<link\s+rel=\"icon\"[^>]*>", "", view.get_standalone())
    return Markup(f'<iframe class="viewer" title="{html.escape(title)}" srcdoc="{html.escape(page)}"></iframe>')


def roi_outlines(rois=LANGUAGE_ROIS, radius=ROI_RADIUS_MM):
    """The language ROI spheres (left centres, mirrored to the right) on the surface: the pial vertices within
    ``radius`` mm, ``{"L": labels, "R": labels}``."""
    return sphere_labels(list(rois.values()), radius)


def label_outlines(files):
    """``({"L": labels, "R": labels}, names)`` of a ``.label.gii`` pair (``{"L": path, "R": path}``)."""
    labels = {hemi: np.asarray(read_gifti(path), dtype=int) for hemi, path in files.items()}
    return labels, sorted({name for path in files.values() for name in label_names(path).values()})


def planted_outlines(output_dir):
    """The demo's planted regions on the surface (its ground truth's labels image, projected as the maps are), or
    ``None`` for any other dataset."""
    truth = demo_truth(output_dir)
    if truth is None:
        return None
    folder, content = truth
    try:
        image = nib.load(folder / content["labels_file"])
    except (OSError, KeyError):
        return None
    projected = project(image, interpolation="nearest_most_frequent")
    return {hemi: np.rint(np.nan_to_num(values)).astype(int) for hemi, values in projected.items()}


def surface_record(files):
    """The ``Surface`` record of a map's sidecar (how it came onto the surface)."""
    path = next(iter(files.values()))
    return json.loads(path.with_name(path.name.replace(".func.gii", ".json")).read_text()).get("Surface", {})


def surface_source(record):
    """``fitted on fMRIPrep's surface BOLD`` or ``projected from the volume``, from a ``Surface`` record."""
    return "fitted on fMRIPrep's surface BOLD" if str(record.get("Source", "")).startswith("fMRIPrep") \
        else "projected from the volume (nilearn vol_to_surf)"


def participant_surfaces(output_dir, folder, name, models, joints):
    """The participant report's surface figures of one task (``name``: its scores table's
    :class:`DerivativeName`): each model's best-layer r with one colour scale (``model["surface_map"]``), each joint
    model space's unique R² (``space["surface_map"]``), and the interactive viewer of the best-scoring model.
    Returns the task's surface block (``None`` without surface files): its viewer, the maps' source, what the
    outlines are."""
    entities = {"sub": name.sub, "task": name.task}
    maps = {model["label"]: surface_files(folder, **entities, model=model["label"], layer="best", stat="r")
            for model in models}
    maps = {label: files for label, files in maps.items() if files}
    if not maps:
        return None
    values = {label: read_surface(files) for label, files in maps.items()}
    vmax = shared_vmax(values.values())
    planted = planted_outlines(output_dir)
    outlines = planted if planted is not None else roi_outlines()
    for model in models:
        if model["label"] in values:
            model["surface_map"] = surface_views(values[model["label"]], vmax, outlines=outlines)
            model["pycortex_map"] = pycortex_flatmap(values[model["label"]], vmax)  # None without pycortex's subject
    for joint in joints:
        for space in joint["spaces"]:
            files = surface_files(folder, **entities, model=joint["label"], desc=space["label"], stat="uniquer2")
            if files:
                unique = read_surface(files)
                space["surface_map"] = surface_views(unique, shared_vmax([unique]), cmap="viridis", symmetric=False,
                                                     outlines=outlines)
    best = max(values, key=lambda label: next(m["row"].get("mean_r_top10", 0) for m in models if m["label"] == label))
    record = surface_record(maps[best])
    return {"source": surface_source(record), "record": record, "vmax": vmax, "best": best,
            "outlines": "the planted regions" if planted is not None else
            "the language ROIs (10 mm spheres, left and mirrored right)",
            "viewer": surface_viewer(values[best], vmax, f"sub-{name.sub} {best}: best-layer r")}


def group_surfaces(group_dir, task, names, planted=None):
    """The group report's surface block of one task: per model, its one-sample t map of Fisher-z best-layer r
    (FDR q < 0.05 where the group level wrote the thresholded map) on both hemispheres, and its L - R t map (left
    hemisphere), with one colour scale per kind and the ROI table's regions as outlines; the interactive viewer of
    the planted model, else the model with the largest t. ``None`` without surface files."""
    entities = {"sub": None, "task": task}
    rows = []
    for desc, what in (("fdr05", "one-sample t of Fisher-z best-layer r, FDR q < 0.05"),
                       ("LminusR", "one-sample t of r minus its mirror image (left hemisphere), unthresholded")):
        found = {name.model: None for name in find(group_dir, hemi=ANY, extension=".func.gii", stat="t", desc=desc,
                                                  **entities) if name.model}
        maps = {model: read_surface(surface_files(group_dir, **entities, model=model, desc=desc, stat="t"))
                for model in found}
        if maps:
            rows.append((what, maps, shared_vmax(maps.values())))
    if not rows:
        return None
    regions = surface_files(group_dir, ".label.gii", **entities, suffix="dseg", desc="rois", atlas=None)
    outlines, region_names = label_outlines(regions) if regions else (None, [])
    figures = [{"caption": f"{names.get(model, model)}: {what} (|t| up to {vmax:.3g})",
                "image": surface_views(values, vmax, outlines=outlines)}
               for what, maps, vmax in rows for model, values in maps.items()]
    t_maps = {model: read_surface(surface_files(group_dir, **entities, model=model, desc=None, stat="t"))
              for model in rows[0][1]}
    t_maps = {model: values for model, values in t_maps.items() if any(np.isfinite(v).any() for v in values.values())}
    chosen = planted if planted in t_maps else max(t_maps, key=lambda m: np.nanmax(np.concatenate(
        list(t_maps[m].values())))) if t_maps else None
    viewer = surface_viewer(t_maps[chosen], shared_vmax([t_maps[chosen]]), f"{names.get(chosen, chosen)}: group t") \
        if chosen is not None else None
    return {"figures": figures, "regions": region_names, "viewer": viewer,
            "viewer_model": names.get(chosen, chosen)}

