"""The participant report, ``sub-<label>.html`` at the output root, built from the files of the output folder
only (so ``--reports-only`` rebuilds it)."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from markupsafe import Markup

from bids_encoding.derivatives.names import find, participant_dir, report_path, scores_tables
from bids_encoding.hemispheres import is_template_space
from bids_encoding.reports.boilerplate import REFERENCES, methods, to_html
from bids_encoding.reports.figures import brain_map, layer_curve
from bids_encoding.reports.render import inline_svg, relative, render
from bids_encoding.reports.style import model_display
from bids_encoding.reports.surface import participant_surfaces

SIGNIFICANCE_Q = 0.05


def _mode(values):
    values = values[np.isfinite(values)].astype(int)
    return int(np.bincount(values - values.min()).argmax() + values.min()) if values.size else None


def _top_voxels(r_img, fraction=0.1):
    """The voxels whose best-layer r is in the top ``fraction`` of the mask (where the layer choice matters)."""
    r = np.asarray(r_img.dataobj, dtype=float)
    inside = np.isfinite(r) & (r != 0)
    if not inside.any():
        return inside
    return inside & (r >= np.quantile(r[inside], 1 - fraction))


def _model_block(output_dir, files, scores, label, template):
    """Figures and table row of one model."""
    best = {name.stat: path for name, path in files.items() if name.model == label and name.layer == "best"
            and name.extension == ".nii.gz"}
    sidecar = json.loads(best["r"].with_name(best["r"].name.replace(".nii.gz", ".json")).read_text())
    rows = scores[scores["model"] == label]
    layers = rows[rows["layer"].astype(str) != "best"].assign(layer=lambda t: t["layer"].astype(int))
    best_row = rows[rows["layer"].astype(str) == "best"].iloc[0].to_dict()
    r_img = nib.load(best["r"])
    chosen = _mode(np.asarray(nib.load(best["layer"]).dataobj, dtype=float)[_top_voxels(r_img)]) \
        if "layer" in best else None
    name, kind = model_display(sidecar["Model"]["Id"], sidecar["Model"].get("Source") == "baseline",
                               bool((sidecar.get("Features") or {}).get("Speech")))
    block = {"label": label, "name": name, "kind": kind,
             "row": best_row,
             "template": template, "sidecar": sidecar,
             "layer_curve": Markup(layer_curve(layers, chosen)),
             "r_map": brain_map(r_img, template)}
    alpha = next((path for name, path in files.items() if name.model == label and name.stat == "alpha"
                  and name.layer == str(chosen) and name.extension == ".nii.gz"), None)
    if alpha is not None:
        values = np.asarray(nib.load(alpha).dataobj, dtype=float)
        # alpha 1 (log 0) is kept visible: only the voxels outside the mask (0) are left out
        log_alpha = np.where(values > 0, np.log10(np.where(values > 0, values, 1)), 0)
        log_alpha = np.where((values > 0) & (log_alpha == 0), 1e-6, log_alpha)
        block["alpha_map"] = brain_map(nib.Nifti1Image(log_alpha.astype(np.float32), r_img.affine), template,
                                       cmap="viridis", symmetric=False)
        block["alpha_layer"] = chosen
    if "q" in best:
        q = np.asarray(nib.load(best["q"]).dataobj, dtype=float)
        r = np.asarray(r_img.dataobj, dtype=float)
        kept = np.where((q < SIGNIFICANCE_Q) & (q > 0), r, 0).astype(np.float32)
        block["significant_map"] = brain_map(nib.Nifti1Image(kept, r_img.affine), template)
        block["significance"] = (sidecar.get("Significance") or {}).get("Method", "")
    if "rnorm" in best:
        block["rnorm_map"] = brain_map(nib.load(best["rnorm"]), template)
    return block


def _joint_block(output_dir, files, scores, label, template):
    """The split of a joint model: per space its split scores and unique variance (table), and on the brain."""
    maps = {(name.desc, name.stat): path for name, path in files.items() if name.model == label
            and name.layer is None and name.extension == ".nii.gz"}
    sidecar = json.loads(maps[(None, "r")].with_name(maps[(None, "r")].name.replace(".nii.gz", ".json")).read_text())
    rows = scores[scores["model"] == label].set_index(scores[scores["model"] == label]["layer"].astype(str))
    spaces = []
    for space in sidecar["JointModel"]["Spaces"]:
        stat = "uniquer2" if (space["Label"], "uniquer2") in maps else "splitr2"
        name, kind = model_display(space["Id"], space["Source"] == "baseline")
        spaces.append({"label": space["Label"], "name": name, "kind": kind, "layer": space.get("Layer"),
                       "row": rows.loc[space["Label"]].to_dict(), "stat": stat,
                       "map": brain_map(nib.load(maps[(space["Label"], stat)]), template, cmap="viridis",
                                        symmetric=False)})
    return {"label": label, "sidecar": sidecar, "row": rows.loc["joint"].to_dict(), "spaces": spaces,
            "solver": sidecar["JointModel"]["SolverDescription"],
            "r_map": brain_map(nib.load(maps[(None, "r")]), template)}


def _task_block(output_dir, scores_path, files):
    scores = pd.read_csv(scores_path, sep="\t")
    name = next(n for n, p in files.items() if p == scores_path)
    template = is_template_space(name.space)
    joint_labels = set(scores.loc[scores["layer"].astype(str) == "joint", "model"].astype(str))
    labels = [label for label in dict.fromkeys(scores["model"].astype(str)) if label not in joint_labels]
    models = [_model_block(output_dir, files, scores, label, template) for label in labels]
    joints = [_joint_block(output_dir, files, scores, label, template) for label in sorted(joint_labels)]
    surface = participant_surfaces(output_dir, scores_path.parent, name, models, joints)
    first = models[0]["sidecar"]
    sidecar_path = next(path for n, path in files.items() if n.model == labels[0] and n.layer == "best"
                        and n.stat == "r" and n.extension == ".json")
    mask_json = next(path for n, path in files.items() if n.desc == "brain" and n.suffix == "mask"
                     and n.extension == ".json")
    mask = json.loads(mask_json.read_text())
    source = mask.get("MaskSource") or {}
    timeline = participant_dir(output_dir, name.sub, "figures") / \
        str(name.with_(desc="timeline", suffix="plot", extension=".svg"))
    ceiling = next((path for n, path in files.items() if n.stat == "ccmax" and n.extension == ".nii.gz"), None)
    return {"task": name.task, "space": name.space, "scores_file": relative(scores_path, output_dir),
            "sidecar_file": relative(sidecar_path, output_dir),
            "runs": [{**run, "name": Path(run["Bold"]).name} for run in first.get("Runs", [])],
            "left_out": first.get("LeftOutRuns", []),
            "timeline": inline_svg(timeline),
            "mask": {"file": relative(mask_json, output_dir), "source": source.get("Source", "not recorded"),
                     "files": source.get("Files", []), "coverage": mask.get("LanguageROICoverage", {})},
            "models": models, "joints": joints, "surface": surface,
            # R² means little where alphas were chosen on r (predictions not scaled to the data): shown only when
            # they were chosen on R²
            "r2_shown": str((first.get("Ridge") or {}).get("AlphaScore", "")).lower().endswith(("r²", "r2")),
            "ceiling_map": brain_map(nib.load(ceiling), template, cmap="viridis", symmetric=False)
            if ceiling is not None else None,
            "sidecars": [model["sidecar"] for model in models]}


def participant_results(output_dir, subject):
    """The participant's scores tables (one per task and space), or [] when there are none."""
    return scores_tables(output_dir, subject)


def write_participant_report(output_dir, subject, warnings=(), failure=None, log=None):
    """Write ``sub-<subject>.html`` at the output root from the participant's outputs; a ``failure``
    (``{"message": ..., "log": ...}``) is shown first. Returns the report's path."""
    output_dir = Path(output_dir)
    tasks = []
    for scores_path in participant_results(output_dir, subject):
        files = find(scores_path.parent, sub=subject)
        tasks.append(_task_block(output_dir, scores_path, files))
    sidecars = tasks[0]["sidecars"] if tasks else []
    joints = [joint["sidecar"] for t in tasks for joint in t["joints"]]
    surface = next((t["surface"]["record"] for t in tasks if t["surface"]), None)
    text, cites = methods(sidecars, ceiling=any(t["ceiling_map"] for t in tasks), joints=joints,
                          surface=surface) if sidecars \
        else ("", [])
    versions = sidecars[0].get("SoftwareVersions", {}) if sidecars else {}
    if failure is not None:
        failure = {**failure, "participant_results": bool(tasks)}
    sections = [(f"data-{t['task']}", f"Data ({t['task']})") for t in tasks] + \
        [(f"models-{t['task']}", f"Models ({t['task']})") for t in tasks] + \
        [(f"joint-{t['task']}-{j['label']}", f"Joint model {j['label']}") for t in tasks for j in t["joints"]] + \
        [("warnings", "Warnings"), ("methods", "Methods")]
    return render("participant.html.j2", report_path(output_dir, subject), title=f"sub-{subject}",
                  subject=subject, tasks=tasks, warnings=list(warnings), failure=failure, versions=versions,
                  methods=Markup(to_html(text)), references=[REFERENCES[key][0] for key in cites],
                  sections=([("failure", "Failure")] if failure else []) + sections, output_dir=output_dir,
                  log=log)
