"""The ``datasets`` level: one analysis across datasets (docs/group.md, "Across datasets").

Per model matched across the datasets (same label and number of parameters), per voxel and per region: each
dataset's mean over its participants of Fisher-z r and the variance of that mean, combined by
:func:`~bids_encoding.across.metaanalysis.combine` (DerSimonian-Laird, Knapp-Hartung); the same for the left −
right asymmetry and every layer; and the scaling slope per dataset and combined, with Cochran's Q test of whether
the datasets' slopes differ.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bids_encoding.across.collect import common_mask, find_datasets, read_datasets
from bids_encoding.across.metaanalysis import combine, mean_and_variance
from bids_encoding.derivatives.staging import GroupOutput, StagedOutput, write_dataset_description
from bids_encoding.group.rois import LANGUAGE_ROIS, read_roi_file, sphere_masks
from bids_encoding.group.scaling import fit_line, language_models
from bids_encoding.hemispheres import mirror_difference, symmetric_mask

LOGGER = logging.getLogger(__name__)
FLAG = 1.96  # |standardized residual| above which a dataset is flagged as departing from the others


class AcrossOutput(GroupOutput):
    """The datasets level's tables, maps and figures under ``datasets/`` (figures in ``datasets/figures/``)."""

    def __init__(self, output_dir, space):
        StagedOutput.__init__(self, output_dir, "datasets", {"space": space})


def run_datasets_level(config):
    """Combine the datasets in ``config.bids_dir`` (or ``config.datasets``); returns a one-line summary."""
    datasets, space, reference = read_datasets(find_datasets(config.bids_dir, config.datasets))
    matched, models = match_models(datasets)
    write_dataset_description(config.output_dir, config.bids_dir)
    with AcrossOutput(config.output_dir, space) as output:
        mask, left, mirror = symmetric_mask([common_mask(datasets, reference)], reference.affine)
        output.table(dataset_table(datasets), "datasets", "The datasets combined: their output folder, "
                     "participants, tasks, whether their maps were resampled to the common grid, and the raw dataset")
        output.table(models, "models", "Models matched across datasets by label and number of parameters; "
                     "in_all: present in every dataset (only those are combined)")
        rois = sphere_masks(reference.affine, reference.shape[:3],
                            read_roi_file(config.roi_file) if config.roi_file else LANGUAGE_ROIS)
        region_rows = []
        for label in matched["model"]:
            region_rows += _model_outputs(output, datasets, label, (mask, left, mirror), rois, reference)
        _joint_outputs(output, datasets, mask, reference)
        output.table(pd.DataFrame(region_rows), "rois", "Per model, measure and region (10 mm spheres, left and "
                     "mirrored right): each dataset's mean Fisher-z r over its participants (estimate, variance, "
                     "externally standardized residual against the other datasets, flagged when |residual| > "
                     "1.96) and the random-effects combination (DerSimonian-Laird, Knapp-Hartung CI, tau2, I2, "
                     "Cochran's Q)")
        slopes = slope_table(datasets, matched, mask, reference)
        output.table(slopes, "slopes", "The scaling slope (mean r over the common mask against log10(parameters), "
                     "trained language models in every dataset): per dataset the mean of its participants' slopes "
                     "and its standard error; combined: DerSimonian-Laird with the Knapp-Hartung CI; q_p tests "
                     "whether the datasets' slopes differ")
        if not slopes.empty:
            from bids_encoding.across.figures import forest_plot

            forest_plot(slopes, output.figure(desc="slopes"))
    if config.neurovault:
        _neurovault(config, datasets, space)
    return (f"datasets level done: {len(datasets)} datasets ({', '.join(d.name for d in datasets)}), "
            f"{len(matched)} model(s) in all of them; results in {Path(config.output_dir) / 'datasets'}")


def _neurovault(config, datasets, space):
    """--neurovault: the combined maps as a NeuroVault collection (``analysis_level`` M, meta-analysis)."""
    from bids_encoding.derivatives.neurovault import collection_record, export_collection

    names = ", ".join(d.source.get("Name", d.name) for d in datasets)
    record = collection_record(f"Encoding models of language across datasets ({names}; bids_encoding)",
                               f"Random-effects combination (DerSimonian-Laird, Knapp-Hartung) of {len(datasets)} "
                               "datasets' mean Fisher-z best-layer r per model: the combined effect, its t, tau2 "
                               "and I2, per layer and for the left-minus-right asymmetry.",
                               [d.source or {"Name": d.name} for d in datasets])
    folder = export_collection(Path(config.output_dir) / "neurovault" / "datasets", Path(config.output_dir) /
                               "datasets", record, "M", sum(len(d.subjects) for d in datasets), {"space": space})
    LOGGER.info("NeuroVault collection written to %s (upload: python %s)", folder, folder / "upload.py")


def match_models(datasets):
    """``(models in every dataset, table of every model)``: models matched by label and number of parameters."""
    rows = {}
    for dataset in datasets:
        for row in dataset.models.to_dict("records"):
            key = (row["model"], row["n_params"])
            rows.setdefault(key, {**row, "datasets": []})["datasets"].append(dataset.name)
    table = pd.DataFrame(list(rows.values()))
    table["in_all"] = table["datasets"].map(len) == len(datasets)
    table["datasets"] = table["datasets"].map(",".join)
    for row in table[~table["in_all"]].itertuples():
        LOGGER.warning("model %s is in %s only: left out of the combination", row.model, row.datasets)
    if not table["in_all"].any():
        from bids_encoding.errors import BadDataError

        raise BadDataError("no model is in every dataset (same label and number of parameters): fit one model "
                           "in all of them")
    return table[table["in_all"]], table


def dataset_table(datasets):
    return pd.DataFrame([{"dataset": d.name, "folder": str(d.folder), "n_participants": len(d.subjects),
                          "tasks": ",".join(d.tasks), "resampled": d.resampled,
                          "source_name": d.source.get("Name", "n/a"), "source_doi": d.source.get("DatasetDOI", "n/a")}
                         for d in datasets])


def _combined_maps(output, per_dataset, mask, affine, description, **entities):
    """Combine ``[(n_participants, *grid) per dataset]`` over the mask's voxels; write the combined effect, its t,
    tau2 and I2 maps; return the :class:`Combined`."""
    estimates, variances = zip(*(mean_and_variance(maps[:, mask]) for maps in per_dataset))
    combined = combine(np.stack(estimates), np.stack(variances))
    for stat, values, what in (("effect", combined.estimate, "combined mean Fisher-z r"),
                               ("t", combined.t, "Knapp-Hartung t of the combined mean"),
                               ("tau2", combined.tau2, "between-dataset variance (DerSimonian-Laird)"),
                               ("i2", combined.i2, "I2: share of the spread due to heterogeneity")):
        image = np.zeros(mask.shape, dtype=np.float32)
        image[mask] = np.nan_to_num(values)
        output.image(image, affine, "statmap", f"{description}: {what} across datasets",
                     {"Datasets": combined.n_datasets, "DegreesOfFreedom": combined.n_datasets - 1},
                     stat=stat, **entities)
    return combined


def _model_outputs(output, datasets, label, geometry, rois, reference):
    """The maps of one model (best layer, L − R, each layer) and its region rows (``geometry``: the common
    symmetric mask, its left voxels and each voxel's mirror)."""
    affine, (mask, left, mirror) = reference.affine, geometry
    best = [dataset.z_maps(label, reference) for dataset in datasets]
    _combined_maps(output, best, mask, affine, f"{label}, best layer", model=label)
    asymmetry = [np.stack([mirror_difference(np.nan_to_num(m), left, mirror) for m in maps]) for maps in best]
    _combined_maps(output, asymmetry, left & mask, affine, f"{label}, left minus mirror right", model=label,
                   desc="LminusR")
    for layer in _shared_layers(datasets, label):
        per_layer = [dataset.z_maps(label, reference, _layer_reader(label, layer)) for dataset in datasets]
        if all(maps is not None for maps in per_layer):
            _combined_maps(output, per_layer, mask, affine, f"{label}, layer {layer}", model=label, layer=str(layer))
    rows = []
    for region, region_mask in rois.items():
        inside = region_mask & mask
        if not inside.any():
            continue
        values = [np.nanmean(maps[:, inside], axis=1) for maps in best]
        rows += region_rows(values, [d.name for d in datasets], {"model": label, "measure": "fisher_z_r",
                                                                 "roi": region})
    return rows


JOINT_STATS = {"uniquer2": ("unique", "unique R²"), "splitr2": ("split", "split R²")}


def _joint_outputs(output, datasets, mask, reference):
    """Per joint model that every dataset fitted with the same spaces, per space: its unique and split R²
    combined (no Fisher transform: R² is averaged as it is), as the group level's ``desc-<space>{unique,split}``."""
    from bids_encoding.group.joint import joint_models

    shared = None
    for dataset in datasets:
        found = {label: tuple(about["spaces"]) for label, about in joint_models(dataset.results).items()}
        shared = found if shared is None else {label: spaces for label, spaces in shared.items()
                                               if found.get(label) == spaces}
    for label, spaces in sorted((shared or {}).items()):
        for space in spaces:
            for stat, (desc, what) in JOINT_STATS.items():
                def read(result, label=label, space=space, stat=stat):
                    return result.joint_map(label, space, stat)

                per_dataset = [dataset.z_maps(label, reference, read, fisher=False) for dataset in datasets]
                if all(maps is not None for maps in per_dataset):
                    _combined_maps(output, per_dataset, mask, reference.affine, f"joint model {label}, {space}: "
                                   f"{what}", model=label, desc=f"{space}{desc}")


def region_rows(values, names, keys):
    """Rows of one region: per dataset its estimate, variance, residual and flag; then the combination."""
    estimates, variances = zip(*(mean_and_variance(v) for v in values))
    combined = combine(np.array(estimates), np.array(variances))
    rows = [{**keys, "dataset": name, "estimate": y, "variance": v, "n_participants": len(value),
             "residual": float(res), "flagged": bool(abs(res) > FLAG)}
            for name, y, v, value, res in zip(names, estimates, variances, values, combined.residuals)]
    rows.append({**keys, "dataset": "combined", "estimate": float(combined.estimate), "ci_low": float(combined.ci_low),
                 "ci_high": float(combined.ci_high), "t": float(combined.t), "p": float(combined.p),
                 "tau2": float(combined.tau2), "i2": float(combined.i2), "q": float(combined.q),
                 "q_p": float(combined.q_p), "n_participants": sum(len(value) for value in values)})
    return rows


def slope_table(datasets, matched, mask, reference):
    """Per dataset, each participant's slope of mean r over ``mask`` against log10(parameters) across the trained
    language models of every dataset; the rows of :func:`region_rows` (measure ``slope``)."""
    trained = language_models(matched[~matched["baseline"]])
    if trained["n_params"].nunique() < 2:
        return pd.DataFrame()
    x = np.log10(trained["n_params"].astype(float).to_numpy())
    values = []
    for dataset in datasets:
        means = np.stack([np.tanh(np.nanmean(np.where(mask, dataset.z_maps(label, reference), np.nan)
                                              .reshape(len(dataset.subjects), -1), axis=1))
                          for label in trained["model"]], axis=1)
        values.append(np.array([fit_line(x, row)[0] for row in means]))
    return pd.DataFrame(region_rows(values, [d.name for d in datasets], {"measure": "slope_mean_r_log10_params",
                                                                         "models": ",".join(trained["model"])}))


def _shared_layers(datasets, label):
    layers = None
    for dataset in datasets:
        found = {int(key) for result in dataset.results for key in _layer_paths(result, label)}
        layers = found if layers is None else layers & found
    return sorted(layers or [])


def _layer_paths(result, label):
    """``{layer: r map}`` of one participant's model (its per-layer maps, beside the best-layer map)."""
    from bids_encoding.derivatives.names import find

    best = result.best_r.get(label)
    if best is None:
        return {}
    found = find(best.parent, sub=result.subject, task=result.task, space=result.space, model=label, stat="r",
                 suffix="statmap", extension=".nii.gz")
    return {name.layer: path for name, path in found.items() if str(name.layer).isdigit()}


def _layer_reader(label, layer):
    def read(result):
        import nibabel as nib

        path = _layer_paths(result, label).get(str(layer))
        if path is None:
            return None
        return np.where(result.own_mask, np.asarray(nib.load(path).dataobj, dtype=float), np.nan)

    return read
