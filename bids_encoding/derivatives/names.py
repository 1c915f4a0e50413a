"""File names of the derivatives: built and parsed in one place, so every stage finds what another wrote.

Participant files:
``sub-<p>_task-<t>[_hemi-<L|R>]_space-<s>[_model-<m>][_layer-<k>][_desc-<d>][_stat-<x>]_<suffix><ext>``
(``hemi-`` and ``space-fsaverage5`` for the maps on the cortical surface, GIFTI ``.func.gii``)
under ``sub-<p>/func/`` (figures in ``sub-<p>/figures/``, the ``--isc-cache`` in
``sub-<p>/cache/``). Group files: the same without ``sub-`` (and with
``atlas-`` where a table is per atlas), under ``group/``. The HTML reports,
``sub-<p>.html`` and ``group.html``, are at the output root. ``model`` and
``layer`` are this project's own entities (BIDS has no standard for
statistical maps yet; BEP041 is a proposal).

Other modules find these files with :func:`find` and the helpers below,
never with globs of their own (``tests/test_architecture.py``).
"""

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

AVERAGE_LABEL = "average"  # the participant label of the average participant (--average-participants)
ENTITY_ORDER = ("sub", "task", "hemi", "space", "atlas", "model", "layer", "desc", "stat")
_EXTENSIONS = (".nii.gz", ".nii", ".func.gii", ".label.gii", ".tsv", ".json", ".svg", ".html", ".npz", ".npy")
_LABEL = re.compile(r"^[A-Za-z0-9]+$")
ANY = object()  # find(): any value of the entity, or none


@dataclass(frozen=True)
class DerivativeName:
    """The entities, suffix and extension of one derivative file.

    >>> name = DerivativeName(sub="01", task="story", space="orig", model="gpt2", layer="3", stat="r",
    ...                       suffix="statmap", extension=".nii.gz")
    >>> str(name)
    'sub-01_task-story_space-orig_model-gpt2_layer-3_stat-r_statmap.nii.gz'
    >>> DerivativeName.parse(str(name)) == name
    True
    """

    suffix: str
    extension: str
    sub: str | None = None
    task: str | None = None
    hemi: str | None = None
    space: str | None = None
    atlas: str | None = None
    model: str | None = None
    layer: str | None = None
    desc: str | None = None
    stat: str | None = None

    def __post_init__(self):
        for key in ENTITY_ORDER:
            value = getattr(self, key)
            if value is not None and not _LABEL.match(str(value)):
                raise ValueError(f"{key}-{value}: BIDS labels are letters and digits only")
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, key, str(value))

    def __str__(self):
        parts = [f"{key}-{getattr(self, key)}" for key in ENTITY_ORDER if getattr(self, key) is not None]
        return "_".join(parts + [self.suffix]) + self.extension

    @property
    def entities(self):
        return {key: getattr(self, key) for key in ENTITY_ORDER if getattr(self, key) is not None}

    def with_(self, **changes):
        """The same name with other entities, suffix or extension."""
        return replace(self, **changes)

    @property
    def sidecar(self):
        """The JSON sidecar's name."""
        return self.with_(extension=".json")

    @classmethod
    def parse(cls, name):
        """Entities of a file name this package wrote; ``ValueError`` for any other name."""
        name = Path(name).name
        extension = next((ext for ext in _EXTENSIONS if name.endswith(ext)), None)
        if extension is None:
            raise ValueError(f"{name}: not a derivative file of bids_encoding")
        *pairs, suffix = name[: -len(extension)].split("_")
        entities = {}
        for pair in pairs:
            key, _, value = pair.partition("-")
            if key not in ENTITY_ORDER or not value or key in entities:
                raise ValueError(f"{name}: unexpected '{pair}'")
            entities[key] = value
        order = [ENTITY_ORDER.index(key) for key in entities]
        if order != sorted(order):
            raise ValueError(f"{name}: entities out of order")
        return cls(suffix=suffix, extension=extension, **entities)


def find(folder, pattern="*", **wanted):
    """Derivative files in ``folder`` whose entities, suffix and extension match ``wanted``
    (a value of ``None`` asks for the entity to be absent), as ``{DerivativeName: Path}``. The surface files
    (``hemi-``) are found only when ``hemi`` is asked for (``L``, ``R``, or :data:`ANY`)."""
    wanted.setdefault("hemi", None)
    known = {field.name for field in fields(DerivativeName)}
    unknown = set(wanted) - known
    if unknown:
        raise TypeError(f"unknown entities {sorted(unknown)}")
    found = {}
    for path in sorted(Path(folder).glob(pattern)):
        try:
            name = DerivativeName.parse(path.name)
        except ValueError:
            continue
        if all(value is ANY or getattr(name, key) == (None if value is None else str(value))
               for key, value in wanted.items()):
            found[name] = path
    return found


def participant_dir(output_dir, subject, datatype="func"):
    """A participant's folder of ``datatype`` (``func``, ``figures``, ``cache``) in ``output_dir``."""
    return Path(output_dir) / f"sub-{subject}" / datatype


def participant_labels(output_dir):
    """The labels of the participant folders (``sub-<label>/``) in ``output_dir``, sorted."""
    return sorted(path.name[len("sub-"):] for path in Path(output_dir).glob("sub-*") if path.is_dir())


def participant_func_dirs(output_dir):
    """Every participant's ``func/`` folder in ``output_dir`` (the average participant's too), sorted."""
    return sorted(Path(output_dir).glob("sub-*/func"))


def find_participants(output_dir, **wanted):
    """:func:`find` in every participant's ``func/`` folder of ``output_dir``, in the order of their paths."""
    return find(output_dir, "sub-*/func/*", **wanted)


def scores_tables(output_dir, subject):
    """A participant's scores tables (one per task and space), sorted; ``[]`` when there are none."""
    return list(find(participant_dir(output_dir, subject), sub=subject, suffix="scores", extension=".tsv").values())


def best_layer_sidecars(folder):
    """The sidecars of the best-layer r maps (one per model) in a participant's ``func/`` folder, sorted."""
    return list(find(folder, layer="best", desc=None, stat="r", suffix="statmap", extension=".json").values())


def joint_model_maps(files):
    """The joint models' maps (``--joint-model``) among ``files`` (``{DerivativeName: Path}``, as :func:`find`
    gives them): ``{model: {(desc, stat): path}}``. A joint model is a ``model-`` with a ``stat-r`` map that has
    neither ``layer-`` nor ``desc-`` (a single model's maps have a ``layer-``); its per-space maps carry the
    space's label as ``desc-``.
    """
    joint = {name.model for name in files if name.model and name.layer is None and name.desc is None
             and (name.stat, name.suffix, name.extension) == ("r", "statmap", ".nii.gz")}
    maps = {model: {} for model in sorted(joint)}
    for name, path in files.items():
        if name.model in joint and name.layer is None and (name.suffix, name.extension) == ("statmap", ".nii.gz"):
            maps[name.model][(name.desc, name.stat)] = path
    return maps


def report_path(output_dir, subject=None):
    """The HTML report at the output root: ``sub-<subject>.html``, or ``group.html`` without a subject."""
    return Path(output_dir) / ("group.html" if subject is None else f"sub-{subject}.html")


def reports(output_dir):
    """The HTML reports in ``output_dir``: the participants' (sorted), then the group's."""
    group = report_path(output_dir)
    return sorted(Path(output_dir).glob("sub-*.html")) + ([group] if group.exists() else [])
