"""``--neurovault``: the group's (or the datasets level's) unthresholded maps as one NeuroVault collection, ready
to upload.

The folder holds ``collection.json`` (the fields of NeuroVault's collection API: ``name``, ``description``,
``full_dataset_url``), ``images.json`` (per image the fields of its image API: ``file``, ``name``,
``description``, ``map_type``, ``modality``, ``analysis_level``, ``number_of_subjects``,
``target_template_image``, ``cognitive_paradigm_short_description``, ``contrast_definition``), the images, and
``upload.py``, which uploads them with pynv (``pip install pynv``; a NeuroVault token in ``NEUROVAULT_TOKEN``).

Map types follow NeuroVault's codes (NeuroVault/NeuroVault ``apps/statmaps/models.py``): one-sample t maps are
``T``; a Fisher-z r map or a slope is an effect size, not a z statistic, so it is ``Other`` (NeuroVault's ``Z``
is a z statistic, and its ``R`` means an ROI or mask); τ² is a variance, ``V``. Thresholded (FDR) maps are left
out: NeuroVault asks for unthresholded maps.
"""

import json
import shutil
from pathlib import Path

from bids_encoding.derivatives.names import find

MAP_TYPES = ("T", "Z", "F", "X2", "P", "IP", "M", "U", "R", "Pa", "A", "V", "Other")
ANALYSIS_LEVELS = ("S", "G", "M", "Other")
TEMPLATES = ("GenericMNI", "Dorr2008", "NMT", "MNI152NLin2009cAsym")
PARADIGM = "listening to spoken stories (naturalistic narrative comprehension)"
STAT_TYPES = {"t": "T", "tau2": "V"}  # everything else: Other

UPLOAD = '''"""Upload this folder to NeuroVault as a new collection (written by bids_encoding --neurovault).

    pip install pynv
    NEUROVAULT_TOKEN=<your token, https://neurovault.org/accounts/tokens/> python upload.py
"""

import json
import os
from pathlib import Path

from pynv import Client

here = Path(__file__).parent
client = Client(access_token=os.environ["NEUROVAULT_TOKEN"])
collection = json.loads((here / "collection.json").read_text())
created = client.create_collection(collection.pop("name"), **collection)
for image in json.loads((here / "images.json").read_text()):
    client.add_image(created["id"], str(here / image.pop("file")), **image)
print(f"https://neurovault.org/collections/{created['id']}/")
'''


def target_template(space):
    """NeuroVault's ``target_template_image`` for a BIDS template space."""
    return space if space in TEMPLATES else "GenericMNI"


def image_entry(path, name, level, n_subjects):
    """One image's NeuroVault fields, from the map's name and its sidecar's ``Description``."""
    sidecar = path.with_name(path.name.replace(".nii.gz", ".json"))
    description = json.loads(sidecar.read_text()).get("Description", "") if sidecar.is_file() else ""
    return {"file": f"images/{path.name}", "name": path.name.replace("_statmap.nii.gz", ""),
            "description": description, "map_type": STAT_TYPES.get(name.stat, "Other"), "modality": "fMRI-BOLD",
            "analysis_level": level, "number_of_subjects": int(n_subjects),
            "target_template_image": target_template(name.space),
            "cognitive_paradigm_short_description": PARADIGM,
            "contrast_definition": f"{name.model or 'across models'}: {description}"[:200]}


def export_collection(folder, maps_dir, collection, level, n_subjects, entities=None):
    """Write the collection of every unthresholded map in ``maps_dir`` to ``folder``; return its path.

    Parameters
    ----------
    folder : Path
    maps_dir : Path
        The level's folder of maps (``group/`` or ``datasets/``).
    collection : dict
        ``name``, ``description`` (and ``full_dataset_url``) of the collection.
    level : str
        NeuroVault's ``analysis_level``: ``G`` (group) or ``M`` (meta-analysis).
    n_subjects : int
    entities : dict or None
        Only the maps with these entities (e.g. one task of the group level).
    """
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "images").mkdir(parents=True)
    images = []
    for name, path in find(maps_dir, suffix="statmap", extension=".nii.gz", **(entities or {})).items():
        if (name.desc or "").endswith("fdr05"):
            continue
        shutil.copy2(path, folder / "images" / path.name)
        images.append(image_entry(path, name, level, n_subjects))
    (folder / "collection.json").write_text(json.dumps(collection, indent=2) + "\n")
    (folder / "images.json").write_text(json.dumps(images, indent=2) + "\n")
    (folder / "upload.py").write_text(UPLOAD)
    return folder


def collection_record(title, description, sources):
    """``collection.json``: a name, a description naming the source datasets and their DOIs, and the
    ``full_dataset_url`` of the source dataset when there is one."""
    from bids_encoding import __version__

    named = "; ".join(f"{source.get('Name', 'a dataset')}" + (f" (doi:{source['DatasetDOI']})"
                                                             if source.get("DatasetDOI") else "")
                      for source in sources)
    record = {"name": title[:200],
              "description": f"{description} Source data: {named or 'see the methods'}. Maps written by "
                             f"bids_encoding {__version__}; unthresholded, in the outputs' template space."}
    dois = [source["DatasetDOI"] for source in sources if source.get("DatasetDOI")]
    if len(dois) == 1:
        record["full_dataset_url"] = source_url(dois[0])
    return record


def source_url(doi):
    """A dataset DOI as a URL (``full_dataset_url``), or ``None``."""
    if not doi:
        return None
    doi = str(doi).removeprefix("doi:").removeprefix("https://doi.org/")
    return f"https://doi.org/{doi}"


def dataset_source(folder):
    """The raw dataset's ``Name`` and ``DatasetDOI``, from the dataset_description.json that the outputs'
    ``DatasetLinks.raw`` points to."""
    from urllib.parse import urlparse

    try:
        links = json.loads((Path(folder) / "dataset_description.json").read_text()).get("DatasetLinks", {})
        raw = json.loads((Path(urlparse(links.get("raw", "")).path) / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return {}
    return {key: raw[key] for key in ("Name", "DatasetDOI") if raw.get(key)}
