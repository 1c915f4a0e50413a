#!/usr/bin/env python3
"""Run the participant level on every bids-examples dataset and tabulate how each run ends.

Every run must end with one ``bids_encoding: error:`` line and a BIDS-Apps exit
code (or succeed), never a traceback or exit 1, and must leave the dataset
unchanged. Needs a materialized copy of bids-examples (placeholder images
included), e.g. from the project's shared reference data::

    python ../shared/scripts/materialize_bids_examples.py /tmp/bids-examples
    python scripts/sweep_bids_examples.py /tmp/bids-examples scripts/bids_examples_sweep.tsv

The table has one row per dataset: exit code, seconds, whether the dataset was
left unchanged, the BIDS validator's error count on it (n/a: not run), and the error line.
"""

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def digest(root):
    sha = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            sha.update(str(path.relative_to(root)).encode())
            sha.update(str(path.stat().st_size).encode())
            sha.update(str(path.stat().st_mtime_ns).encode())
    return sha.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=Path, help="a materialized bids-examples folder")
    parser.add_argument("table", type=Path, help="TSV to write")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    rows = ["dataset\texit_code\tseconds\tunchanged\tvalidator_errors\tmessage"]
    datasets = sorted(p for p in args.examples.iterdir() if p.is_dir() and not p.name.startswith("."))
    for dataset in datasets:
        before = digest(dataset)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            try:
                done = subprocess.run([sys.executable, "-m", "bids_encoding", str(dataset), str(Path(out) / "out"),
                                       "participant", "--models", "wordrate", "--pvalue-method", "none"],
                                      capture_output=True, text=True, timeout=args.timeout)
                code, err = done.returncode, done.stderr
            except subprocess.TimeoutExpired:
                code, err = "timeout", ""
            seconds = time.perf_counter() - start
        errors = [line for line in err.splitlines() if line.startswith("bids_encoding: error:")]
        message = errors[-1] if errors else ("Traceback" if "Traceback" in err else "")
        validated = re.search(r"bids-validator: (\d+) error", err)
        rows.append(f"{dataset.name}\t{code}\t{seconds:.1f}\t{digest(dataset) == before}\t"
                    f"{validated.group(1) if validated else 'n/a'}\t{message[:300]}")
        print(rows[-1], flush=True)
    args.table.write_text("\n".join(rows) + "\n")
    codes = [row.split("\t")[1] for row in rows[1:]]
    print(f"{len(codes)} datasets: " + ", ".join(f"exit {c}: {codes.count(c)}" for c in sorted(set(codes))))


if __name__ == "__main__":
    main()
