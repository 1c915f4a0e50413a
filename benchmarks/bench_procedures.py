"""``--procedure bgp2024`` and ``antonello2023`` against the default on the demo's dataset: time, and agreement
with each seed's code.

The dataset is the demo's (3 participants x 4 runs, planted through the real all-MiniLM-L6-v2), preprocessed
into the fMRIPrep layout. The participant level runs twice with ``--average-participants`` and the real
MiniLM: the default procedure, then ``bgp2024``, each in a child process, timed. Then the average participant's
r maps of every layer are compared with the re-implementation of Bonnasse-Gahot & Pallier's code in
``tests/test_procedures.py`` (same word features): max |delta r| per layer and the alphas per fold. Then
``antonello2023`` runs, timed alike, and sub-01's r and alpha maps of every layer are compared with the
re-implementation of Antonello, Vaidya & Huth's ``ridge_utils`` in ``tests/test_procedure_antonello.py``: max
|delta r| per layer and the fraction of voxels whose alpha is the same.

Usage::

    python benchmarks/bench_procedures.py

The LAST line printed is ``default_s=<s> bgp2024_s=<s> antonello2023_s=<s> max_abs_delta_r=<over layers>``
(bgp2024 against their code on the voxels that no run holds constant, the one difference docs/ridge.md names;
the JSON has both). Results are appended to ``benchmarks/results/bench_procedures.jsonl``.
"""

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _results import append_result

RESULTS = Path(__file__).parent / "results" / "bench_procedures.jsonl"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SUBJECTS = ("01", "02", "03")


def participant_level(bids_dir, output_dir, *options):
    start = time.time()
    subprocess.run([sys.executable, "-m", "bids_encoding", str(bids_dir), str(output_dir), "participant", "--models",
                    MODEL, "--average-participants", "--device", "cpu", "--pvalue-method", "none", "--skip-reports",
                    "--skip-bids-validation", *options], check=True, capture_output=True)
    return time.time() - start


def agreement(root, output_dir):
    """Max |delta r| per layer and whether the alphas agree, for the average participant."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_procedures import (
        _app_map,
        compute_regressor_from_activations,
        constant_voxels,
        fit_runs,
        masked_runs,
        resampled,
        standardize,
        symmetric_mask,
    )

    from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec

    bold = {s: sorted((root / "bids" / "derivatives" / "fmriprep" / f"sub-{s}" / "func")
                      .glob("*_desc-preproc_bold.nii.gz")) for s in SUBJECTS}
    imgs = {s: [resampled(path) for path in paths] for s, paths in bold.items()}
    mask = symmetric_mask([img for s in SUBJECTS for img in imgs[s]])
    runs = {s: masked_runs(imgs[s], mask) for s in SUBJECTS}
    n_runs = len(bold[SUBJECTS[0]])
    constant = constant_voxels([img for s in SUBJECTS for img in imgs[s]], mask)

    def average(without_constant):
        # a voxel constant over a run in every participant is 0/0 in their standardize, and scikit-learn refuses
        # the NaN: their code stops there; it is set to 0 here. without_constant: their code on the voxels that no
        # run holds constant. Their float32 cleaning turns such a voxel into rounding noise of unit variance, the
        # preset scores it 0 (docs/ridge.md); a voxel of r = 0 leaves the preset's argmax of the mean r unchanged,
        # so this isolates that one difference.
        fmri_runs = [np.nan_to_num(standardize(standardize(np.mean([runs[s][run] for s in SUBJECTS], axis=0))
                                               [10:-10])) for run in range(n_runs)]
        return [values[:, ~constant] for values in fmri_runs] if without_constant else fmri_runs

    loaded = load_model(parse_model_spec(MODEL))
    regressors = {}
    for run in range(n_runs):
        events = pd.read_csv(root / "bids" / f"task-story_run-{run + 1}_events.tsv", sep="\t")
        words = events[events["trial_type"] == "word"]
        hidden = extract_word_features(loaded, list(words["word"]), FeatureSettings(pooling="mean", step=64),
                                       progress=False).hidden
        n_scans = imgs[SUBJECTS[0]][run].shape[-1]
        onsets = words["onset"].to_numpy()
        for layer, values in hidden.items():
            regressor = compute_regressor_from_activations(np.asarray(values, dtype=np.float64), onsets,
                                                           onsets + words["duration"].to_numpy(),
                                                           np.arange(n_scans) * 2.0 + 1.0)
            regressors.setdefault(layer, []).append(standardize(regressor[10:-10]))
    per_layer, alphas_equal = {}, {}
    for without_constant in (False, True):
        fmri_runs = average(without_constant)
        key = "without_constant_voxels" if without_constant else "as_their_code"
        per_layer[key], alphas_equal[key] = {}, True
        for layer, regressors_runs in regressors.items():
            r, chosen = fit_runs(regressors_runs, fmri_runs)
            app_r, sidecar = _app_map(output_dir, "average", layer, "r", mask)
            per_layer[key][layer] = float(np.abs(app_r[~constant] - (r if without_constant else r[~constant])).max())
            alphas_equal[key] &= bool(np.allclose(sidecar["AlphaPerFold"], chosen, rtol=1e-6))
    return per_layer, alphas_equal, int(constant.sum()), int(mask.get_fdata().sum())


def antonello_agreement(root, output_dir, subject="01"):
    """Max |delta r| per layer and the fraction of voxels with the same alpha, for ``subject``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from nilearn.masking import apply_mask
    from test_design import huth_lanczosinterp2d
    from test_procedure_antonello import cleaned_bold, their_fit

    from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec

    func = output_dir / f"sub-{subject}" / "func"
    mask = next(func.glob("*_desc-brain_mask.nii.gz"))
    bold = sorted((root / "bids" / "derivatives" / "fmriprep" / f"sub-{subject}" / "func")
                  .glob("*_desc-preproc_bold.nii.gz"))
    responses = [cleaned_bold(path, mask) for path in bold]
    loaded = load_model(parse_model_spec(MODEL))
    features = {}
    for run in range(len(bold)):
        events = pd.read_csv(root / "bids" / f"task-story_run-{run + 1}_events.tsv", sep="\t")
        words = events[events["trial_type"] == "word"]
        hidden = extract_word_features(loaded, list(words["word"]), FeatureSettings(pooling="last"),
                                       progress=False).hidden
        midpoints = (words["onset"] + words["duration"] / 2).to_numpy()
        tr_times = np.arange(responses[run].shape[0] + 15) * 2.0 + 1.0
        for layer, values in hidden.items():
            features.setdefault(layer, []).append(huth_lanczosinterp2d(np.asarray(values), midpoints, tr_times))
    per_layer, alphas_equal = {}, {}
    for layer, runs in features.items():
        corrs, valphas = their_fit(runs, responses, [len(bold) - 1])  # no repeats: the last run is the test
        app_r = apply_mask(str(next(func.glob(f"*_layer-{layer}_stat-r_statmap.nii.gz"))), mask)
        app_alpha = apply_mask(str(next(func.glob(f"*_layer-{layer}_stat-alpha_statmap.nii.gz"))), mask)
        per_layer[layer] = float(np.abs(app_r - corrs).max())
        alphas_equal[layer] = float(np.isclose(app_alpha, valphas ** 2, rtol=1e-5).mean())
    return per_layer, alphas_equal


def main():
    from bids_encoding.synthetic import generate_dataset

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate_dataset(root, MODEL, n_participants=len(SUBJECTS), n_runs=4, layout="fmriprep")
        bids_dir = root / "bids"
        default_s = participant_level(bids_dir, root / "default")
        bgp_s = participant_level(bids_dir, root / "bgp2024", "--procedure", "bgp2024")
        per_layer, alphas_equal, n_constant, n_voxels = agreement(root, root / "bgp2024")
        antonello_s = participant_level(bids_dir, root / "antonello2023", "--procedure", "antonello2023")
        antonello_r, antonello_alphas = antonello_agreement(root, root / "antonello2023")
    result = {"benchmark": "bench_procedures", "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                                                       capture_output=True, text=True).stdout.strip(),
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "model": MODEL,
              "participants": len(SUBJECTS), "runs": 4, "default_s": round(default_s, 1),
              "bgp2024_s": round(bgp_s, 1), "max_abs_delta_r_per_layer": per_layer,
              "alphas_per_fold_equal": alphas_equal, "voxels": n_voxels, "constant_voxels_left_out": n_constant,
              "antonello2023_s": round(antonello_s, 1), "antonello2023_max_abs_delta_r_per_layer": antonello_r,
              "antonello2023_fraction_of_voxels_with_equal_alpha": antonello_alphas}
    append_result(RESULTS, result)
    print(json.dumps(result))
    print(f"default_s={default_s:.1f} bgp2024_s={bgp_s:.1f} antonello2023_s={antonello_s:.1f} max_abs_delta_r="
          f"{max(per_layer['without_constant_voxels'].values()):.2e}")


if __name__ == "__main__":
    main()
