"""Nested leave-one-run-out ridge: our solver vs himalaya's RidgeCV (torch backend), same data and splits.

Workload of ../shared/reference/performance.md: 9 runs of 310 scans, p = 768
features, 13 alphas, one alpha per voxel chosen by leave-one-run-out inside
each leave-one-run-out outer fold (72 inner + 9 outer splits), V voxels.
Both solvers are timed one after the other in the same process, on the same
float32 data. Then several participants who share the stimulus are fitted
one by one and together (voxels concatenated, shared design).

Usage::

    python benchmarks/bench_ridge.py --n-voxels 20000 [--device cpu|cuda] [--participants 3]

Banded ridge (``--banded a|b``): (a) 9 runs × 310 scans, a 768-feature space and three 1-column spaces; (b) 9 runs
× 278 scans, 5,120 + 3 one-column spaces; nested leave-one-run-out outer × inner, ``--n-iter`` Dirichlet gammas
(the first uniform) and 13 alphas, ours (BandedRidgeCV) vs himalaya's MultipleKernelRidgeCV (random search over the
same gammas, precomputed linear kernels, one fit per outer fold with the inner splits as ``cv``, then the held-out
run predicted), one after the other in the same process; ``--outer-folds K`` computes the first K outer folds only
(both sides)::

    python benchmarks/bench_ridge.py --banded a --n-voxels 2000 --n-iter 20 [--outer-folds 2]

The LAST line printed is
``ratio=<himalaya time / our time> alpha_agreement=<fraction> max_abs_r_diff=<value>``
(r difference over the voxels whose alphas agree). Results are appended to
``benchmarks/results/bench_ridge.jsonl``.
"""

import argparse
import json
import os
import platform
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _results import append_result

from bids_encoding.plan import ridge_products
from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.ridge.memory import Compute
from bids_encoding.ridge.scoring import correlation
from bids_encoding.synthetic.regression import regression_runs

RESULTS = Path(__file__).parent / "results" / "bench_ridge.jsonl"


def himalaya_nested(x_runs, y_runs, alphas, device, kernel=False):
    """The same nested scheme with himalaya: one RidgeCV (``kernel``: KernelRidgeCV with a linear kernel, its
    form for more features than scans) per outer fold, inner leave-one-run-out splits."""
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import correlation_score

    backend = set_backend("torch_cuda" if device.startswith("cuda") else "torch")
    n = len(x_runs[0])
    test_r, chosen = [], []
    for test in range(len(x_runs)):
        train = [i for i in range(len(x_runs)) if i != test]
        rows = np.arange(n * len(train))
        inner = [(rows[rows // n != k], rows[rows // n == k]) for k in range(len(train))]
        if kernel:
            model = KernelRidgeCV(alphas=alphas, kernel="linear", cv=inner, solver_params=dict(
                score_func=correlation_score, local_alpha=True, n_targets_batch=2000, n_alphas_batch=None,
                n_targets_batch_refit=2000))
        else:
            model = RidgeCV(alphas=alphas, cv=inner, solver_params=dict(
                score_func=correlation_score, local_alpha=True, n_targets_batch=2000, n_alphas_batch=None,
                n_targets_batch_refit=2000, warn=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(np.concatenate([x_runs[i] for i in train]), np.concatenate([y_runs[i] for i in train]))
        prediction = backend.to_numpy(model.predict(x_runs[test]))
        test_r.append(correlation(prediction, y_runs[test]))
        chosen.append(backend.to_numpy(model.best_alphas_))
    return np.array(test_r), np.array(chosen)


def himalaya_banded(x_runs, y_runs, bands, gammas, alphas, device, folds):
    """himalaya's MultipleKernelRidgeCV (random search over ``gammas``, precomputed linear kernels, float32) per
    outer fold in ``folds``, inner leave-one-run-out: held-out r, penalties exp(-deltas_) (folds, spaces, voxels)."""
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import MultipleKernelRidgeCV
    from himalaya.scoring import correlation_score

    backend = set_backend("torch_cuda" if device.startswith("cuda") else "torch")
    n = len(x_runs[0])
    test_r, penalties = [], []
    for test in folds:
        train = [i for i in range(len(x_runs)) if i != test]
        rows = np.arange(n * len(train))
        inner = [(rows[rows // n != k], rows[rows // n == k]) for k in range(len(train))]
        x_train = np.concatenate([x_runs[i] for i in train])
        kernels = np.stack([x_train[:, b] @ x_train[:, b].T for b in bands])
        model = MultipleKernelRidgeCV(kernels="precomputed", solver="random_search", cv=inner, solver_params=dict(
            n_iter=gammas, alphas=alphas, score_func=correlation_score, local_alpha=True, progress_bar=False,
            n_targets_batch=2000, n_targets_batch_refit=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(kernels, np.concatenate([y_runs[i] for i in train]))
        prediction = model.predict(np.stack([x_runs[test][:, b] @ x_train[:, b].T for b in bands]))
        test_r.append(correlation(backend.to_numpy(prediction), y_runs[test]))
        penalties.append(np.exp(-backend.to_numpy(model.deltas_)))
    return np.array(test_r), np.array(penalties)


BANDED_SHAPES = {"a": (9, 310, 768), "b": (9, 278, 5120)}


def banded(args):
    """``--banded``: ours vs himalaya's MultipleKernelRidgeCV on one shape."""
    from bids_encoding.ridge.banded import BandedRidgeCV, dirichlet_gammas

    n_runs, n_scans, n_wide = BANDED_SHAPES[args.banded]
    x_runs, y_runs = regression_runs(0, n_runs, n_scans, n_wide + 3, args.n_voxels)
    bands = [slice(0, n_wide)] + [slice(n_wide + k, n_wide + k + 1) for k in range(3)]
    alphas = np.logspace(1, 7, args.n_alphas)
    gammas = dirichlet_gammas(args.n_iter, len(bands), seed=0)
    folds = list(range(args.outer_folds or n_runs))
    solver = BandedRidgeCV(alphas, n_iter=gammas, compute=Compute(device=args.device))
    solver.fit_score([x[:40] for x in x_runs[:3]], bands, [y[:40, :64] for y in y_runs[:3]], folds=[0])  # warm-up
    ours, our_time = timed(lambda: solver.fit_score(x_runs, bands, y_runs, folds=folds), args.device)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device, "banded": args.banded,
              "threads": torch.get_num_threads(), "n_runs": n_runs, "n_scans": n_scans,
              "n_features": [n_wide, 1, 1, 1], "n_iter": args.n_iter, "n_alphas": args.n_alphas,
              "n_voxels": args.n_voxels, "outer_folds": len(folds), "ours_seconds": round(our_time, 2)}
    print(f"ours: {our_time:.1f} s")
    if args.skip_himalaya:
        print(json.dumps(result))
        return
    result["load_average_after_ours"] = [round(v, 2) for v in os.getloadavg()]
    (their_r, their_penalties), their_time = timed(
        lambda: himalaya_banded(x_runs, y_runs, bands, gammas, alphas, args.device, folds), args.device)
    result["load_average_after_himalaya"] = [round(v, 2) for v in os.getloadavg()]
    same = np.isclose(ours.penalties[folds], their_penalties, rtol=1e-4).all(axis=1)
    result.update(himalaya_estimator="MultipleKernelRidgeCV (random_search, precomputed linear kernels)",
                  himalaya_seconds=round(their_time, 2), ratio=round(their_time / our_time, 2),
                  choice_agreement=float(same.mean()),
                  max_abs_r_diff=float(np.abs(ours.test_r[folds] - their_r)[same].max()))
    append_result(RESULTS, result)
    print(f"himalaya MultipleKernelRidgeCV (torch backend): {their_time:.1f} s")
    print(f"ratio={result['ratio']} choice_agreement={result['choice_agreement']:.5f} "
          f"max_abs_r_diff={result['max_abs_r_diff']:.2e}")


def timed(function, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = function()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-voxels", type=int, default=20000)
    parser.add_argument("--n-runs", type=int, default=9)
    parser.add_argument("--n-scans", type=int, default=310)
    parser.add_argument("--n-features", type=int, default=768)
    parser.add_argument("--n-alphas", type=int, default=13)
    parser.add_argument("--participants", type=int, default=3,
                        help="participants for the shared-stimulus comparison (0: skip it)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tf32", action="store_true")
    parser.add_argument("--form", choices=("auto", "primal", "dual"), default="auto",
                        help="our ridge's form (auto: dual when features outnumber training scans)")
    parser.add_argument("--compare-forms", action="store_true",
                        help="also time the other form (primal vs dual) on the same data")
    parser.add_argument("--mem", default=None, help="memory budget of our fit, e.g. 16GB")
    parser.add_argument("--skip-himalaya", action="store_true")
    parser.add_argument("--banded", choices=sorted(BANDED_SHAPES), default=None,
                        help="banded ridge at shape a or b (see above) instead of the one-space ridge")
    parser.add_argument("--n-iter", type=int, default=20, help="gammas of the banded ridge")
    parser.add_argument("--outer-folds", type=int, default=None, help="banded: the first K outer folds only")
    args = parser.parse_args()
    if args.banded:
        return banded(args)

    alphas = np.logspace(1, 7, args.n_alphas)
    x_runs, y_runs = regression_runs(0, args.n_runs, args.n_scans, args.n_features, args.n_voxels)
    from bids_encoding.cli.parser import parse_memory

    solver = NestedRidgeCV(alphas, compute=Compute(device=args.device, tf32=args.tf32, form=args.form,
                                                 mem=parse_memory(args.mem) if args.mem else None))
    solver.fit_score([x[:60] for x in x_runs[:3]], [y[:60, :64] for y in y_runs[:3]])  # warm-up
    ours, our_time = timed(lambda: solver.fit_score(x_runs, y_runs), args.device)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # data included; before himalaya runs
    flop = ridge_products(args.n_runs * args.n_scans, args.n_features, args.n_voxels, args.n_runs, args.n_alphas,
                          ours.forms[0])[0]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device,
              "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda")
              else (platform.processor() or "cpu"), "threads": torch.get_num_threads(),
              "n_runs": args.n_runs, "n_scans": args.n_scans, "n_features": args.n_features,
              "n_alphas": args.n_alphas, "n_voxels": args.n_voxels, "ours_seconds": round(our_time, 2),
              "ours_tflops": round(flop / our_time / 1e12, 3), "ours_peak_rss_gib": round(peak_gib, 2),
              "mem": args.mem}
    result["forms"] = sorted(set(ours.forms))
    result["form"] = args.form
    print(f"ours ({'/'.join(result['forms'])} form): {our_time:.1f} s ({result['ours_tflops']} TFLOP/s in the "
          "main products)")
    if args.compare_forms:
        other = "primal" if ours.forms[0] == "dual" else "dual"
        other_solver = NestedRidgeCV(alphas, compute=Compute(device=args.device, tf32=args.tf32, form=other,
                                                             mem=parse_memory(args.mem) if args.mem else None))
        other_result, other_time = timed(lambda: other_solver.fit_score(x_runs, y_runs), args.device)
        same_form = np.isclose(ours.alpha, other_result.alpha, rtol=1e-4)
        result.update({f"{other}_seconds": round(other_time, 2), "forms_alpha_agreement": float(same_form.mean()),
                       "forms_max_abs_r_diff": float(np.abs(ours.test_r - other_result.test_r)[same_form].max())})
        print(f"{other} form: {other_time:.1f} s; alphas agree for {same_form.mean():.5f} of voxels")

    if args.participants > 1:
        share = args.n_voxels // args.participants
        pieces = [[y[:, k * share:(k + 1) * share] for y in y_runs] for k in range(args.participants)]
        _, alone = timed(lambda: [solver.fit_score(x_runs, piece) for piece in pieces], args.device)
        _, together = timed(lambda: solver.fit_score(x_runs, [np.hstack(parts) for parts in zip(*pieces)]),
                            args.device)
        result.update(participants=args.participants, one_by_one_seconds=round(alone, 2),
                      together_seconds=round(together, 2), together_speedup=round(alone / together, 2))
        print(f"{args.participants} participants x {share} voxels: one by one {alone:.1f} s, together "
              f"{together:.1f} s ({alone / together:.2f}x faster)")

    if args.skip_himalaya:
        print(json.dumps(result))
        return
    kernel = args.n_features > (args.n_runs - 1) * args.n_scans
    (their_r, their_alpha), their_time = timed(lambda: himalaya_nested(x_runs, y_runs, alphas, args.device,
                                                                       kernel), args.device)
    result["himalaya_estimator"] = "KernelRidgeCV (linear)" if kernel else "RidgeCV"
    same = np.isclose(ours.alpha, their_alpha, rtol=1e-4)
    result.update(himalaya_seconds=round(their_time, 2), ratio=round(their_time / our_time, 2),
                  alpha_agreement=float(same.mean()),
                  max_abs_r_diff=float(np.abs(ours.test_r - their_r)[same].max()),
                  max_abs_r_diff_all_voxels=float(np.abs(ours.test_r - their_r).max()))
    append_result(RESULTS, result)
    print(f"himalaya {result['himalaya_estimator']} (torch backend): {their_time:.1f} s")
    print(f"ratio={result['ratio']} alpha_agreement={result['alpha_agreement']:.5f} "
          f"max_abs_r_diff={result['max_abs_r_diff']:.2e}")


if __name__ == "__main__":
    main()
