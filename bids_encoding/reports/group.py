"""The group report, ``group.html`` at the output root, built from ``group/`` (tables, maps, figures) only."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from markupsafe import Markup

from bids_encoding.derivatives.names import best_layer_sidecars, find, participant_func_dirs, report_path
from bids_encoding.hemispheres import is_template_space
from bids_encoding.reports.boilerplate import REFERENCES, methods, to_html
from bids_encoding.reports.figures import brain_map
from bids_encoding.reports.render import inline_svg, relative, render
from bids_encoding.reports.style import model_display, model_names
from bids_encoding.reports.surface import group_surfaces
from bids_encoding.reports.truth import demo_truth

FIT_MEASURES = ("mean_r", "left", "right", "l_minus_r", "mean_r_reliable", "l_minus_r_reliable")


def _table(files, suffix, desc=None, atlas=None):
    path = next((p for n, p in files.items() if n.suffix == suffix and n.extension == ".tsv" and n.desc == desc
                 and n.atlas == atlas), None)
    return (pd.read_csv(path, sep="\t"), path) if path is not None else (None, None)


def planted_model(output_dir):
    """The model the demo planted its signal through, when the input is the demo's synthetic dataset (its
    ground truth beside it), else ``None``."""
    truth = demo_truth(output_dir)
    return None if truth is None else truth[1].get("model")


def planted_label(output_dir, names):
    """The label (``model-``) of the demo's planted model among the group's models, or ``None``."""
    planted = planted_model(output_dir)
    return next((label for label, name in names.items() if planted and Path(planted).name in (label, name)), None)


def _task_block(output_dir, group_dir, task, space, files):
    template = is_template_space(space)
    models, models_path = _table(files, "models")
    fits, fits_path = _table(files, "fits")
    roifits, roifits_path = _table(files, "roifits")
    average, average_path = _table(files, "scores", desc="average")
    neurons, neurons_path = _table(files, "neuronmodels")
    svgs = {name: path for name, path in find(group_dir / "figures", sub=None, task=task, space=space).items()
            if name.extension == ".svg"}
    figures = {name.desc: path for name, path in svgs.items() if name.model is None}
    neuron_figures = [{"model": name.model, "figure": inline_svg(path)} for name, path in sorted(svgs.items(),
                      key=lambda item: str(item[0])) if name.desc == "neuronnetworks"]
    group_fits, speech_fits = [], []
    if fits is not None and not fits.empty:
        chosen = fits[(fits["level"] == "group") & (fits["predictor"] == "log10_params")
                      & fits["measure"].isin(FIT_MEASURES)]
        group_fits = chosen[chosen["family"] == "all"].to_dict("records")
        speech_fits = chosen[chosen["family"] == "speech"].to_dict("records")
    datafits, datafits_path = _table(files, "datafits")
    data_fits = [] if datafits is None else datafits[(datafits["level"] == "group") & datafits["measure"].isin(
        ("mean_r", "mean_r_top10"))].to_dict("records")
    names = {} if models is None else model_names(models)
    joint = _joint_block(output_dir, files, figures, template)
    maps = []
    for name, path in files.items():
        if name.extension != ".nii.gz" or name.suffix != "statmap" or name.model in joint["names"]:
            continue  # the joint models' maps are in their own section
        if name.stat == "t" and not (name.desc or "").endswith("fdr05"):
            continue  # the t maps are shown thresholded
        caption = f"{names.get(name.model, name.model) + ': ' if name.model else ''}{_caption(name)}"
        image = nib.load(path)
        empty = not np.any(np.asarray(image.dataobj))
        maps.append({"model": name.model, "order": (name.stat != "t", name.desc or ""),
                     "caption": caption + (": no voxel passes" if empty else ""),
                     "image": None if empty else brain_map(image, template, symmetric=name.stat != "isc",
                                                           cmap="viridis" if name.stat == "isc" else "RdBu_r")})
    maps.sort(key=lambda item: (item["model"] is None, item["model"] or "", item["order"]))
    reliable = next((p for n, p in files.items() if n.suffix == "mask" and n.desc == "reliable"
                     and n.extension == ".nii.gz"), None)
    if reliable is not None:
        maps.append({"caption": "reliable voxels", "image": brain_map(nib.load(reliable), template,
                                                                      cmap="Reds", symmetric=False)})
    mask_json = next((p for n, p in files.items() if n.suffix == "mask" and n.desc == "symmetric"
                      and n.extension == ".json"), None)
    rows = models.to_dict("records") if models is not None else []
    for row in rows:
        row["name"], row["kind"] = model_display(row["model_id"], row["baseline"], row.get("modality") == "speech")
    return {"task": task, "space": space, "planted": planted_model(output_dir),
            "models": rows,
            "models_file": relative(models_path, output_dir) if models_path else None,
            "fits": group_fits, "fits_file": relative(fits_path, output_dir) if fits_path else None,
            "roifits": roifits.to_dict("records") if roifits is not None else [],
            "roifits_file": relative(roifits_path, output_dir) if roifits_path else None,
            "average": average.to_dict("records") if average is not None else [],
            "average_file": relative(average_path, output_dir) if average_path else None,
            "scaling": inline_svg(figures["scaling"]) if "scaling" in figures else None,
            "speech_fits": speech_fits,
            "speechscaling": inline_svg(figures["speechscaling"]) if "speechscaling" in figures else None,
            "data_fits": data_fits, "datafits_file": relative(datafits_path, output_dir) if datafits_path else None,
            "datascaling": inline_svg(figures["datascaling"]) if "datascaling" in figures else None,
            "lateralization": inline_svg(figures["lateralization"]) if "lateralization" in figures else None,
            "averagescaling": inline_svg(figures["averagescaling"]) if "averagescaling" in figures else None,
            "roi_figure": inline_svg(figures["roiasymmetry"]) if "roiasymmetry" in figures else None,
            "neurons": neurons.to_dict("records") if neurons is not None else [],
            "neurons_file": relative(neurons_path, output_dir) if neurons_path else None,
            "neuronscaling": inline_svg(figures["neuronscaling"]) if "neuronscaling" in figures else None,
            "neuronnetworks": neuron_figures,
            "maps": maps,
            "joint": joint,
            "surface": group_surfaces(group_dir, task, names, planted_label(output_dir, names)),
            "mask": json.loads(mask_json.read_text()) if mask_json else {}}


def _joint_block(output_dir, files, figures, template):
    """The joint models' section: per joint model, each space's mean unique R², split r and split R² (from
    ``_jointmodels.tsv``) and the group t map of its unique R²; the scaling of the language model's unique R²
    (``_jointfits.tsv`` and its figures)."""
    summary, summary_path = _table(files, "jointmodels")
    fits, fits_path = _table(files, "jointfits")
    block = {"names": set(), "models": [], "fits": [], "scaling": [],
             "file": relative(summary_path, output_dir) if summary_path else None,
             "fits_file": relative(fits_path, output_dir) if fits_path else None}
    if summary is None:
        return block
    t_maps = {(name.model, name.desc): path for name, path in files.items()
              if name.stat == "t" and name.extension == ".nii.gz" and name.suffix == "statmap"}
    for model, rows in summary.groupby("model", sort=False):
        block["names"].add(model)
        spaces = rows.to_dict("records")
        for row in spaces:
            path = t_maps.get((model, f"{row['space']}unique"))
            row["image"] = brain_map(nib.load(path), template) if path is not None else None
        block["models"].append({"model": model, "spaces": spaces})
    if fits is not None and not fits.empty:
        block["fits"] = fits[fits["level"] == "group"].to_dict("records")
    block["scaling"] = [inline_svg(path) for desc, path in sorted(figures.items())
                        if desc and desc.startswith("jointscaling")]
    return block


def _caption(name):
    """What a group map shows, in words."""
    if name.stat == "t":
        what = {"fdr05": "one-sample t of Fisher-z best-layer r over participants",
                "LminusRfdr05": "one-sample t of r minus its mirror image (left voxels)",
                "slopefdr05": "one-sample t of the participants' voxel-wise scaling slopes",
                "speechslopefdr05": "one-sample t of the participants' voxel-wise scaling slopes (speech models)"}
        return what.get(name.desc, name.desc) + ", FDR q < 0.05"
    if name.stat == "slope" and name.desc == "speech":
        return "voxel-wise slope of r on log10(parameters), speech models"
    return {"r": "group-mean r, left minus mirror right (left voxels)",
            "slope": "voxel-wise slope of r on log10(parameters)",
            "isc": "inter-subject correlation"}.get(name.stat, name.stat)


def write_group_report(output_dir, warnings=(), failure=None, log=None):
    """Write ``group.html`` at the output root from the group outputs. Returns its path."""
    output_dir = Path(output_dir)
    group_dir = output_dir / "group"
    tasks = []
    scores = find(group_dir, sub=None, suffix="scores", extension=".tsv", desc=None) if group_dir.is_dir() else {}
    for name in scores:
        files = find(group_dir, sub=None, task=name.task, space=name.space)
        tasks.append(_task_block(output_dir, group_dir, name.task, name.space, files))
    sidecars = _participant_sidecars(output_dir)
    text, cites = methods(sidecars, group=True) if sidecars else ("", [])
    sections = [(f"scaling-{t['task']}", f"Scaling ({t['task']})") for t in tasks] + \
        [("warnings", "Warnings"), ("methods", "Methods")]
    return render("group.html.j2", report_path(output_dir), title="group", tasks=tasks, warnings=list(warnings),
                  failure=failure, log=log, output_dir=output_dir, methods=Markup(to_html(text)),
                  references=[REFERENCES[key][0] for key in cites], sections=sections,
                  versions=sidecars[0].get("SoftwareVersions", {}) if sidecars else {})


def _participant_sidecars(output_dir):
    """One best-layer sidecar per model, from the first participant with results (for the methods)."""
    for folder in participant_func_dirs(output_dir):
        sidecars = [json.loads(path.read_text()) for path in best_layer_sidecars(folder)]
        if sidecars:
            return sidecars
    return []
