"""What the cortical surface costs a participant: projecting a map of a 2 mm MNI grid onto fsaverage5 (nilearn's
``vol_to_surf``, used as it is), drawing its report figure (lateral, medial and flat views) and its viewer, and the
ridge with fMRIPrep's surface BOLD fitted beside the voxels (2 x 10,242 more columns) against the voxels alone.

Usage::

    python benchmarks/bench_surface.py [--voxels 50000] [--scans 600] [--features 256] [--repeats 3]

Prints each time (the best of ``--repeats``); the LAST line is ``ratio=<ridge with the vertices / voxels alone>``;
results go to benchmarks/results/bench_surface.jsonl. No own implementation competes here: the projection is
nilearn's and the ridge the app's; the numbers say what ``--surface auto`` and the report figures add.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from _results import append_result

from bids_encoding.reports.surface import shared_vmax, surface_viewer, surface_views
from bids_encoding.ridge import NestedRidgeCV
from bids_encoding.surface import N_VERTICES, fsaverage5, project

RESULTS = Path(__file__).parent / "results" / "bench_surface.jsonl"


def _best(function, repeats):
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def _mni_map(rng):
    shape, affine = (97, 115, 97), np.array([[2.0, 0, 0, -96], [0, 2, 0, -132], [0, 0, 2, -78], [0, 0, 0, 1]])
    return nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), affine)


def _ridge_seconds(n_columns, args, rng):
    runs = 4
    designs = [rng.normal(size=(args.scans // runs, args.features)).astype(np.float32) for _ in range(runs)]
    responses = [rng.normal(size=(args.scans // runs, n_columns)).astype(np.float32) for _ in range(runs)]
    ridge = NestedRidgeCV(np.logspace(0, 4, 5))
    return _best(lambda: ridge.fit_score(designs, responses, list(range(runs))), args.repeats)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=50000)
    parser.add_argument("--scans", type=int, default=600)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    fsaverage5()  # the meshes loaded before timing
    image = _mni_map(rng)
    timings = {"project": _best(lambda: project(image), args.repeats)[0]}
    values = project(image)
    vmax = shared_vmax([values])
    timings["views"] = _best(lambda: surface_views(values, vmax), args.repeats)[0]
    timings["viewer"], viewer = _best(lambda: surface_viewer(values, vmax, "bench"), args.repeats)
    timings["ridge_voxels"] = _ridge_seconds(args.voxels, args, rng)
    timings["ridge_voxels_and_vertices"] = _ridge_seconds(args.voxels + 2 * N_VERTICES, args, rng)
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.2f} s")
    print(f"viewer size: {len(viewer) / 1e6:.1f} MB")
    append_result(RESULTS, {**{f"{name}_s": seconds for name, seconds in timings.items()}, **vars(args),
                            "viewer_mb": len(viewer) / 1e6, "cores": os.cpu_count(),
                            "machine": platform.processor() or platform.machine()})
    print(f"ratio={timings['ridge_voxels_and_vertices'] / timings['ridge_voxels']:.2f}")


if __name__ == "__main__":
    main()
