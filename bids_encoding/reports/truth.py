"""The demo's ground truth, found from an output folder: ``ground_truth/`` beside the raw dataset that the output's
``dataset_description.json`` links, when that dataset is the demo generator's."""

import json
from pathlib import Path


def demo_truth(output_dir):
    """``(folder, content of ground_truth.json)`` of the demo's synthetic dataset that the results in ``output_dir``
    come from, or ``None`` for any other dataset."""
    from urllib.parse import urlparse

    try:
        links = json.loads((Path(output_dir) / "dataset_description.json").read_text()).get("DatasetLinks", {})
        raw = Path(urlparse(links.get("raw", "")).path)
        generated = json.loads((raw / "dataset_description.json").read_text()).get("GeneratedBy", [])
        if not any(entry.get("Name") == "bids_encoding demo generator" for entry in generated):
            return None
        folder = raw.parent / "ground_truth"
        return folder, json.loads((folder / "ground_truth.json").read_text())
    except (OSError, ValueError, AttributeError):
        return None
