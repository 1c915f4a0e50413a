"""fMRIPrep's derivatives for the synthetic generator: preprocessed runs with their brain masks and confounds
files in the real column layout of both naming generations.

- fMRIPrep 20.0-20.1 (the Narratives derivatives): ``_space-<s>_res-native_desc-preproc_bold`` and
  ``_desc-confounds_regressors.tsv``;
- fMRIPrep >= 20.2: ``_space-<s>_res-<r>_desc-preproc_bold`` and ``_desc-confounds_timeseries.tsv``.

The confounds have the real columns: motion and its ``_derivative1``, ``_power2`` and
``_derivative1_power2`` expansions, csf, white_matter and global_signal with theirs, framewise_displacement,
dvars, std_dvars, CompCor (``a_comp_cor_*`` described in the JSON, ``t_comp_cor_*``), ``cosine*``,
``non_steady_state_outlier*`` and ``motion_outlier*``; the first row of every derivative, FD and DVARS
column is ``n/a``.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
HEAD_RADIUS_MM = 50.0  # fMRIPrep's framewise displacement converts rotations to mm on a 50 mm sphere
N_COMPCOR = 6


def motion_parameters(rng, n_scans, spikes=2):
    """Six head-motion traces (mm, radians): a slow drift, scan-to-scan jitter (breathing, swallowing) and
    ``spikes`` sudden moves."""
    scale = np.array([1, 1, 1, 0.01, 0.01, 0.01])
    steps = rng.normal(0, 0.02, (n_scans, 6)) * scale
    for scan in rng.choice(np.arange(15, n_scans - 5), size=spikes, replace=False):
        steps[scan] += rng.choice([-1, 1], 6) * 0.6 * scale
    return np.cumsum(steps, axis=0) + rng.normal(0, 0.05, (n_scans, 6)) * scale


def _expanded(name, values):
    derivative = np.concatenate([[np.nan], np.diff(values)])
    return {name: values, f"{name}_derivative1": derivative, f"{name}_power2": values ** 2,
            f"{name}_derivative1_power2": derivative ** 2}


def cosine_basis(n_scans, repetition_time, period=128.0):
    """fMRIPrep's discrete cosine drift regressors (nipype ``cosine_filter``) for a cutoff ``period`` in s."""
    count = int(np.floor(2 * n_scans * repetition_time / period))
    t = np.arange(n_scans)
    return np.stack([np.sqrt(2.0 / n_scans) * np.cos(np.pi * (2 * t + 1) * k / (2 * n_scans))
                     for k in range(1, count + 1)], axis=1) if count else np.zeros((n_scans, 0))


def confounds_table(motion, tissue, repetition_time, rng, non_steady=2):
    """The confounds of one run: ``motion`` (n_scans, 6), ``tissue`` {csf, white_matter, global_signal}."""
    n_scans = len(motion)
    columns = {}
    for name in ("global_signal", "csf", "white_matter"):
        columns.update(_expanded(name, tissue[name]))
    displacement = np.abs(np.diff(motion, axis=0))
    fd = np.concatenate([[np.nan], displacement[:, :3].sum(1) + HEAD_RADIUS_MM * displacement[:, 3:].sum(1)])
    std_dvars = np.concatenate([[np.nan], 1.0 + 0.05 * rng.standard_normal(n_scans - 1) + 0.3 * fd[1:]])
    columns.update({"std_dvars": std_dvars, "dvars": 20 * std_dvars, "framewise_displacement": fd,
                    "rmsd": np.concatenate([[np.nan], np.linalg.norm(displacement[:, :3], axis=1)])})
    for prefix in ("t_comp_cor", "a_comp_cor"):
        for k in range(N_COMPCOR if prefix == "t_comp_cor" else 3 * N_COMPCOR):
            columns[f"{prefix}_{k:02d}"] = rng.standard_normal(n_scans) / np.sqrt(n_scans)
    cosines = cosine_basis(n_scans, repetition_time)
    for k in range(cosines.shape[1]):
        columns[f"cosine{k:02d}"] = cosines[:, k]
    for k in range(non_steady):
        columns[f"non_steady_state_outlier{k:02d}"] = (np.arange(n_scans) == k).astype(float)
    for name, values in zip(MOTION, motion.T):
        columns.update(_expanded(name, values))
    for k, scan in enumerate(np.flatnonzero(np.nan_to_num(fd) > 0.5)):
        columns[f"motion_outlier{k:02d}"] = (np.arange(n_scans) == scan).astype(float)
    return pd.DataFrame(columns)


def confounds_metadata(table):
    """The confounds JSON: which mask each aCompCor component comes from (nilearn reads it)."""
    metadata = {}
    a_comp = [column for column in table.columns if column.startswith("a_comp_cor_")]
    for k, column in enumerate(a_comp):
        mask = ("combined", "CSF", "WM")[k // N_COMPCOR]
        metadata[column] = {"Method": "aCompCor", "Mask": mask, "Retained": True,
                            "SingularValue": float(10 - k % N_COMPCOR), "VarianceExplained": 0.05,
                            "CumulativeVarianceExplained": 0.05 * (k % N_COMPCOR + 1)}
    for column in table.columns:
        if column.startswith("t_comp_cor_"):
            metadata[column] = {"Method": "tCompCor", "Retained": True, "VarianceExplained": 0.05}
    return metadata


def write_run_derivatives(preproc_path, table, brain, affine, generation):
    """Write the confounds (TSV + JSON) and the brain mask beside a preprocessed run."""
    import nibabel as nib

    preproc_path = Path(preproc_path)
    stem = preproc_path.name.split("_space-")[0]
    suffix = "regressors" if generation == "20.0" else "timeseries"
    tsv = preproc_path.with_name(f"{stem}_desc-confounds_{suffix}.tsv")
    table.to_csv(tsv, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    tsv.with_suffix(".json").write_text(json.dumps(confounds_metadata(table), indent=2) + "\n")
    mask_path = preproc_path.with_name(preproc_path.name.replace("_desc-preproc_bold", "_desc-brain_mask"))
    nib.Nifti1Image(brain.astype(np.uint8), affine).to_filename(mask_path)
    mask_path.with_name(mask_path.name.replace(".nii.gz", ".json")).write_text(
        json.dumps({"Type": "Brain", "RawSources": [preproc_path.name]}) + "\n")


def write_surface_bold(preproc_path, image, brain, generation, rng):
    """fMRIPrep's surface BOLD beside a preprocessed run: at each fsaverage5 vertex, the time series of the brain
    voxel nearest to its mid-thickness point (noise at the baseline's level where none is inside the brain), one
    GIFTI array per volume. Generation ``24``: ``_hemi-L_space-fsaverage5_bold.func.gii``; ``20.0`` (the
    Narratives dataset's): ``_space-fsaverage6_hemi-L.func.gii``, whose first 10242 vertices are fsaverage5's
    (the others constant)."""
    import nibabel as nib

    from bids_encoding.surface import DENSITIES, N_VERTICES, mesh

    preproc_path = Path(preproc_path)
    stem = preproc_path.name.split("_space-")[0]
    data = np.asarray(image.dataobj, dtype=np.float32)
    level = float(data[brain].mean())
    space = "fsaverage5" if generation != "20.0" else "fsaverage6"
    for hemi in ("L", "R"):
        middle = (mesh("pial", hemi).coordinates + mesh("white_matter", hemi).coordinates) / 2
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(image.affine), middle)).astype(int)
        inside = np.all((ijk >= 0) & (ijk < np.array(brain.shape)), axis=1)
        inside[inside] = brain[tuple(ijk[inside].T)]
        values = np.full((DENSITIES[space], data.shape[3]), level, dtype=np.float32)  # the denser vertices: flat
        values[:N_VERTICES] += rng.normal(0, 2.0, (N_VERTICES, data.shape[3])).astype(np.float32)
        values[:N_VERTICES][inside] = data[tuple(ijk[inside].T)]
        name = (f"{stem}_space-{space}_hemi-{hemi}.func.gii" if generation == "20.0"
                else f"{stem}_hemi-{hemi}_space-{space}_bold.func.gii")
        arrays = [nib.gifti.GiftiDataArray(volume, intent="NIFTI_INTENT_TIME_SERIES", datatype="NIFTI_TYPE_FLOAT32")
                  for volume in np.ascontiguousarray(values.T)]
        nib.save(nib.gifti.GiftiImage(darrays=arrays), str(preproc_path.with_name(name)))
