"""The README demo as a user runs it: wall time and peak memory of ``bids_encoding demo OUT_DIR``.

The demo writes the synthetic dataset, extracts the real all-MiniLM-L6-v2's
features and runs the participant and group levels. It runs in a child
process; its peak resident memory comes from ``getrusage(RUSAGE_CHILDREN)``.
A reshaping of the package must leave both no worse.

Usage::

    python benchmarks/bench_demo.py [--repeats 2]

The LAST line printed is ``wall_s=<best of the repeats> peak_rss_mb=<largest>``. Results are appended to
``benchmarks/results/bench_demo.jsonl``.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import append_result

RESULTS = Path(__file__).parent / "results" / "bench_demo.jsonl"


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="demo runs (the feature cache is not shared)")
    args = parser.parse_args()
    walls = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bids_encoding", "demo", str(Path(folder) / "demo"),
                            "--device", "cpu"], check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": git_commit(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "repeats": args.repeats, "wall_seconds": [round(w, 1) for w in walls],
              "best_wall_seconds": round(min(walls), 1), "peak_rss_mb": round(peak_mb)}
    append_result(RESULTS, result)
    print(result)
    print(f"wall_s={min(walls):.1f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
