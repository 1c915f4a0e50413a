"""The datasets level: three generated datasets in one template space, of two layouts (fMRIPrep's current naming
and Narratives', fMRIPrep 20.0), two with the same planted response and a weaker one; the combination matches a
reference computation written here and PyMARE's DerSimonian-Laird, flags the weaker dataset, and refuses datasets
it cannot align."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import build_tiny_gpt2, validator_errors
from scipy import stats

from bids_encoding.cli import main
from bids_encoding.group.rois import sphere_masks
from bids_encoding.synthetic import generate_dataset

PLANTED = (-56.0, -24.0, 0.0)  # the generator's left sphere
DATASETS = (("alpha", "fmriprep", 1.0, 0), ("beta", "fmriprep", 1.0, 1), ("gamma", "narratives", 0.1, 2))


@pytest.fixture(scope="module")
def combined(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("across")
    wider = build_tiny_gpt2(root / "widegpt2", n_embd=64)
    results = root / "results"
    for name, layout, amplitude, seed in DATASETS:
        generate_dataset(root / name, str(tiny_model), n_participants=3, n_runs=3, layout=layout, seed=seed,
                         amplitude_left=amplitude, amplitude_right=0.3 * amplitude)
        preset = ["--stimuli", "narratives"] if layout == "narratives" else []
        assert main([str(root / name / "bids"), str(results / name), "participant", "--models", str(tiny_model),
                     str(wider), "--device", "cpu", "--pvalue-method", "none", *preset]) == 0
    rois = root / "rois.tsv"
    pd.DataFrame({"name": ["planted"], "x": [PLANTED[0]], "y": [PLANTED[1]], "z": [PLANTED[2]]}).to_csv(
        rois, sep="\t", index=False)
    out = root / "combined"
    assert main([str(results), str(out), "datasets", "--roi-file", str(rois)]) == 0
    return root, results, out


def _reference(estimates, variances):
    """DerSimonian-Laird with the Knapp-Hartung interval, written from the formulas, one region at a time."""
    y, v = np.asarray(estimates), np.asarray(variances)
    k = len(y)
    w = 1 / v
    mu_fixed = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - mu_fixed) ** 2)
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w ** 2) / np.sum(w)))
    ws = 1 / (v + tau2)
    mu = np.sum(ws * y) / np.sum(ws)
    se = np.sqrt(np.sum(ws * (y - mu) ** 2) / ((k - 1) * np.sum(ws)))
    half = stats.t.ppf(0.975, k - 1) * se
    return {"estimate": mu, "ci_low": mu - half, "ci_high": mu + half, "tau2": tau2,
            "i2": max(0.0, (q - (k - 1)) / q), "q_p": stats.chi2.sf(q, k - 1)}


def test_the_combination_matches_a_reference_and_flags_the_weaker_dataset(combined):
    _, results, out = combined
    rois = pd.read_csv(next((out / "datasets").glob("*_rois.tsv")), sep="\t")
    planted = rois[(rois["model"] == "tinygpt2") & (rois["roi"] == "planted_L")].set_index("dataset")
    assert list(planted.index) == ["alpha", "beta", "gamma", "combined"]
    estimates, variances = [], []
    mask_img = nib.load(next((out / "datasets").glob("*_model-tinygpt2_stat-effect_statmap.nii.gz")))
    common = np.asarray(mask_img.dataobj) != 0
    region = sphere_masks(mask_img.affine, mask_img.shape, {"planted": PLANTED})["planted_L"] & common
    for name, *_ in DATASETS:  # each participant's mean Fisher-z r in the region, read from its own map
        z = [np.mean(np.arctanh(np.clip(np.asarray(nib.load(path).dataobj)[region], -0.999, 0.999)))
             for path in sorted((results / name).glob("sub-*/func/*model-tinygpt2_layer-best_stat-r_statmap.nii.gz"))]
        estimates.append(np.mean(z))
        variances.append(np.var(z, ddof=1) / len(z))
    assert np.allclose(planted.loc[["alpha", "beta", "gamma"], "estimate"], estimates, atol=1e-5)
    reference = _reference(estimates, variances)
    for column, value in reference.items():
        assert planted.loc["combined", column] == pytest.approx(value, rel=1e-4, abs=1e-6), column
    pymare = pytest.importorskip("pymare")
    summary = pymare.estimators.DerSimonianLaird().fit_dataset(
        pymare.Dataset(y=np.array(estimates)[:, None], v=np.array(variances)[:, None])).summary()
    assert planted.loc["combined", "estimate"] == pytest.approx(summary.fe_params[0, 0], rel=1e-4)
    assert planted.loc["combined", "tau2"] == pytest.approx(summary.tau2[0], rel=1e-4, abs=1e-8)
    assert planted.loc["gamma", "flagged"] and not planted.loc["alpha", "flagged"]
    assert planted.loc["gamma", "residual"] < -1.96
    assert planted.loc["combined", "i2"] > 0.5 and planted.loc["combined", "q_p"] < 0.05


def test_maps_slopes_models_and_validity(combined):
    _, _, out = combined
    folder = out / "datasets"
    names = {path.name for path in folder.glob("*.nii.gz")}
    prefix = "space-MNI152NLin2009cAsym_model-tinygpt2"
    for stat in ("effect", "t", "tau2", "i2"):
        assert f"{prefix}_stat-{stat}_statmap.nii.gz" in names
        assert f"{prefix}_desc-LminusR_stat-{stat}_statmap.nii.gz" in names
    assert {f"{prefix}_layer-{layer}_stat-effect_statmap.nii.gz" for layer in (0, 1, 2)} <= names
    sidecar = json.loads((folder / f"{prefix}_stat-t_statmap.json").read_text())
    assert sidecar["DegreesOfFreedom"] == 2
    slopes = pd.read_csv(next(folder.glob("*_slopes.tsv")), sep="\t")
    assert list(slopes["dataset"]) == ["alpha", "beta", "gamma", "combined"]
    combined_row = slopes.iloc[-1]
    assert combined_row["ci_low"] <= combined_row["estimate"] <= combined_row["ci_high"]
    models = pd.read_csv(next(folder.glob("*_models.tsv")), sep="\t")
    assert models["in_all"].all() and set(models["model"]) == {"tinygpt2", "widegpt2"}
    assert list((folder / "figures").glob("*_desc-slopes_plot.svg"))
    assert validator_errors(out) == []


def test_datasets_in_other_spaces_are_refused(combined, tiny_model, capsys):
    root, results, _ = combined
    generate_dataset(root / "native", str(tiny_model), n_participants=2, n_runs=3)
    assert main([str(root / "native" / "bids"), str(results / "native"), "participant", "--models",
                 str(tiny_model), "--device", "cpu", "--pvalue-method", "none"]) == 0
    capsys.readouterr()
    code = main([str(results), str(root / "refused"), "datasets"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 65 and "dataset native" in err[-1] and "space-orig, not a template space" in err[-1]
    assert not (root / "refused" / "datasets").exists()
