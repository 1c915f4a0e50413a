"""Shared by the benchmarks: results are appended, one JSON object per line."""

import json
from pathlib import Path


def append_result(path, result):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as stream:
        stream.write(json.dumps(result) + "\n")
