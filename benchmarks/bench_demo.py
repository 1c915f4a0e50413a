"""The README demo as a user runs it: wall time and peak memory of ``bids_encoding demo OUT_DIR``.

The demo writes the synthetic dataset, extracts the real all-MiniLM-L6-v2's
features and runs the participant and group levels. It runs in a child
process; its peak resident memory comes from ``getrusage(RUSAGE_CHILDREN)``.
A reshaping of the package must leave both no worse.

It also checks ``participant --plan`` against the demo: the plan of the demo's own saved configuration
(``logs/*_config.toml``) against the fit times the demo logged (``... layer k fitted (n of n, T s)``), both
recorded (``plan_fit_seconds``, ``measured_fit_seconds``): the calibration of ``bids_encoding/plan.py``.

Usage::

    python benchmarks/bench_demo.py [--repeats 2]

The LAST line printed is ``wall_s=<best of the repeats> peak_rss_mb=<largest>``. Results are appended to
``benchmarks/results/bench_demo.jsonl``.
"""

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import append_result

RESULTS = Path(__file__).parent / "results" / "bench_demo.jsonl"


def git_commit(folder=Path(__file__).parent):
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=folder, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def fit_seconds_logged(log):
    """The demo's fit time: the last ``layer k fitted (n of n, T s)`` line of each model, added up."""
    return sum(float(seconds) for done, total, seconds in re.findall(r"fitted \((\d+) of (\d+), (\d+) s", log)
               if done == total)


def plan_fit_seconds(demo_dir):
    """What ``participant --plan`` predicts for the demo's own configuration (its features cached by then)."""
    output = demo_dir / "derivatives" / "bids_encoding"
    config = next(path for path in sorted((output / "logs").glob("*_config.toml"))
                  if " participant " in path.read_text().splitlines()[0])  # "# effective configuration of: ..."
    plan = subprocess.run([sys.executable, "-m", "bids_encoding", str(demo_dir / "bids"), str(demo_dir / "plan"),
                           "participant", "--config-file", str(config), "--plan", "--skip-bids-validation"],
                          check=True, capture_output=True, text=True, cwd=demo_dir).stdout
    hours, minutes, seconds = re.search(r"fits: \S+ per participant, (\d+):(\d+):(\d+) in all", plan).groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="demo runs (the feature cache is not shared)")
    args = parser.parse_args()
    walls, planned, measured = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            # run from the temporary folder: `python -m` puts the working directory first on sys.path, so a
            # checkout as the working directory would be imported instead of the code PYTHONPATH names
            demo = subprocess.run([sys.executable, "-m", "bids_encoding", "demo", str(Path(folder) / "demo"),
                                   "--device", "cpu"], check=True, capture_output=True, text=True, cwd=folder)
            walls.append(time.perf_counter() - start)
            measured.append(fit_seconds_logged(demo.stderr))
            planned.append(plan_fit_seconds(Path(folder) / "demo"))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
    package = subprocess.run([sys.executable, "-c", "import bids_encoding; print(bids_encoding.__file__)"],
                             capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout.strip()
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": git_commit(Path(package).parent), "package": package,
              "machine": platform.machine(),
              "cpus": os.cpu_count(), "repeats": args.repeats, "wall_seconds": [round(w, 1) for w in walls],
              "best_wall_seconds": round(min(walls), 1), "peak_rss_mb": round(peak_mb),
              "plan_fit_seconds": planned, "measured_fit_seconds": measured,
              "plan_over_measured": [round(p / m, 2) if m else None for p, m in zip(planned, measured)]}
    append_result(RESULTS, result)
    print(result)
    print(f"wall_s={min(walls):.1f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
