"""The datasets level: three generated datasets in one template space, of two layouts (fMRIPrep's current naming
and Narratives', fMRIPrep 20.0), two with the same planted response and a weaker one; the combination matches a
reference computation written here and PyMARE's DerSimonian-Laird, flags the weaker dataset, and refuses datasets
it cannot align."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import bidsignore_patterns_used, build_tiny_gpt2, validator_errors
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
                     str(wider), "--joint-model", f"{tiny_model}+wordrate", "--device", "cpu", "--pvalue-method",
                     "none", *preset]) == 0
    rois = root / "rois.tsv"
    pd.DataFrame({"name": ["planted"], "x": [PLANTED[0]], "y": [PLANTED[1]], "z": [PLANTED[2]]}).to_csv(
        rois, sep="\t", index=False)
    out = root / "combined"
    assert main([str(results), str(out), "datasets", "--roi-file", str(rois), "--neurovault"]) == 0
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
    assert models["in_all"].all() and set(models["model"]) == {"tinygpt2", "widegpt2", "wordrate"}
    for space in ("tinygpt2", "wordrate"):  # the joint model's split, per space
        for desc in ("unique", "split"):
            assert f"space-MNI152NLin2009cAsym_model-jointtinygpt2_desc-{space}{desc}_stat-t_statmap.nii.gz" in names
    assert list((folder / "figures").glob("*_desc-slopes_plot.svg"))
    assert validator_errors(out) == []
    assert {"/datasets", "/neurovault"} <= bidsignore_patterns_used(out, out.parent / "check")


def test_a_grid_that_differs_is_resampled_and_a_model_missing_somewhere_is_left_out(tmp_path):
    from types import SimpleNamespace

    from bids_encoding.across.collect import _on_grid
    from bids_encoding.across.run import match_models

    reference = nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.diag([4.0, 4.0, 4.0, 1.0]))
    data = np.fromfunction(lambda i, j, k: 2.0 * i + j, (20, 20, 20))  # linear: resampling keeps it exact
    finer = nib.Nifti1Image(data.astype(np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    resampled = _on_grid(finer, reference, "continuous")
    i, j, _ = np.indices((10, 10, 10))
    inside = (i < 9) & (j < 9)
    assert np.allclose(resampled[inside], (2.0 * (2 * i) + 2 * j)[inside], atol=1e-3)
    assert _on_grid(reference, reference, "continuous").shape == (10, 10, 10)
    table = pd.DataFrame({"model": ["a", "b"], "n_params": [10, 20], "baseline": [False, False]})
    datasets = [SimpleNamespace(name="one", models=table), SimpleNamespace(name="two", models=table.iloc[:1])]
    matched, models = match_models(datasets)
    assert list(matched["model"]) == ["a"]
    assert models.set_index("model").loc["b", "datasets"] == "one" and not models.set_index("model").loc["b", "in_all"]
    other_size = table.assign(n_params=[10, 30])  # same label, another size: not the same model
    assert list(match_models([datasets[0], SimpleNamespace(name="two", models=other_size)])[0]["model"]) == ["a"]


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


# NeuroVault's API fields and codes (NeuroVault/NeuroVault apps/statmaps/models.py, api/serializers.py)
COLLECTION_SCHEMA = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "maxLength": 200}, "description": {"type": "string"},
                   "full_dataset_url": {"type": "string", "pattern": "^https?://"}}}
IMAGE_SCHEMA = {
    "type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False,
        "required": ["file", "name", "map_type", "modality", "analysis_level", "number_of_subjects",
                     "target_template_image"],
        "properties": {
            "file": {"type": "string", "pattern": r"^images/.+\.nii\.gz$"},
            "name": {"type": "string", "maxLength": 200}, "description": {"type": "string"},
            "map_type": {"enum": ["T", "Z", "F", "X2", "P", "IP", "M", "U", "R", "Pa", "A", "V", "Other"]},
            "modality": {"enum": ["fMRI-BOLD", "fMRI-CBF", "fMRI-CBV", "Diffusion MRI", "Structural MRI", "PET FDG",
                                  "PET [15O]-water", "PET other", "MEG", "EEG", "Other"]},
            "analysis_level": {"enum": ["S", "G", "M", "Other"]},
            "number_of_subjects": {"type": "integer", "minimum": 1},
            "target_template_image": {"enum": ["GenericMNI", "Dorr2008", "NMT", "MNI152NLin2009cAsym"]},
            "cognitive_paradigm_short_description": {"type": "string"},
            "contrast_definition": {"type": "string", "maxLength": 200}}}}


def _check_collection(folder, level, n_subjects, tmp_path):
    import subprocess
    import sys

    jsonschema = pytest.importorskip("jsonschema")
    collection = json.loads((folder / "collection.json").read_text())
    images = json.loads((folder / "images.json").read_text())
    jsonschema.validate(collection, COLLECTION_SCHEMA)
    jsonschema.validate(images, IMAGE_SCHEMA)
    for image in images:
        assert (folder / image["file"]).is_file() and "fdr05" not in image["file"]
        assert image["analysis_level"] == level and image["number_of_subjects"] == n_subjects
        assert image["target_template_image"] == "MNI152NLin2009cAsym"
        stat = image["file"].split("_stat-")[1].split("_")[0]
        assert image["map_type"] == {"t": "T", "tau2": "V"}.get(stat, "Other")  # never R (an ROI) for r maps
    stub = tmp_path / "stub"  # pynv as the upload script calls it, recording the calls instead of uploading
    (stub / "pynv").mkdir(parents=True)
    (stub / "pynv" / "__init__.py").write_text(
        "import json, os\n"
        "class Client:\n"
        "    def __init__(self, access_token): self.calls = []\n"
        "    def create_collection(self, name, **data):\n"
        "        open(os.environ['CALLS'], 'a').write(json.dumps(['collection', name, data]) + '\\n')\n"
        "        return {'id': 7}\n"
        "    def add_image(self, collection_id, file, **data):\n"
        "        assert os.path.isfile(file)\n"
        "        open(os.environ['CALLS'], 'a').write(json.dumps(['image', collection_id, data]) + '\\n')\n")
    calls = tmp_path / "calls.jsonl"
    done = subprocess.run([sys.executable, str(folder / "upload.py")], capture_output=True, text=True,
                          env={"PYTHONPATH": str(stub), "NEUROVAULT_TOKEN": "x", "CALLS": str(calls)})
    assert done.returncode == 0, done.stderr
    made = [json.loads(line) for line in calls.read_text().splitlines()]
    assert made[0][:2] == ["collection", collection["name"]] and len(made) == len(images) + 1
    assert all(call[:2] == ["image", 7] and call[2]["modality"] == "fMRI-BOLD" for call in made[1:])
    return images


def test_the_combined_maps_are_ready_for_neurovault(combined, tmp_path):
    _, _, out = combined
    images = _check_collection(out / "neurovault" / "datasets", "M", 9, tmp_path)
    assert any(image["map_type"] == "T" for image in images) and any(image["map_type"] == "V" for image in images)


def test_the_group_maps_are_ready_for_neurovault(combined, tmp_path):
    root, results, _ = combined
    assert main([str(root / "alpha" / "bids"), str(results / "alpha"), "group", "--group-bootstraps", "50",
                 "--neurovault"]) == 0
    images = _check_collection(results / "alpha" / "neurovault" / "group_task-story", "G", 3, tmp_path)
    assert {image["map_type"] for image in images} >= {"T", "Other"}


def test_the_report_shows_the_slopes_the_flagged_dataset_and_its_sources(combined):
    from test_reports import assert_numbers_match_their_sources

    from bids_encoding.reports.datasets import write_datasets_report

    _, _, out = combined
    report = write_datasets_report(out)
    text = report.read_text()
    assert "<svg" in text and "gamma in planted_L (tinygpt2)" in text
    assert_numbers_match_their_sources(report, out)
