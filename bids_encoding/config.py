"""Settings of one participant-level run, gathered from the command line and config file."""

from dataclasses import dataclass, field
from pathlib import Path

from bids_encoding.design import Cleaning, DesignSettings
from bids_encoding.features import FeatureSettings
from bids_encoding.ridge import DEFAULT_ALPHAS, InnerCV

DEFAULT_MODELS = ("sentence-transformers/all-MiniLM-L6-v2",)


@dataclass
class ParticipantConfig:
    """Everything the participant level needs; every field ends up in the sidecars."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    participant_labels: list | None = None
    task: str | None = None
    space: str | None = None
    mask: Path | None = None
    models: tuple = DEFAULT_MODELS
    device: str = "cpu"
    dtype: str | None = None
    trust_remote_code: bool = False
    feature_cache: Path | None = None
    ffn_neurons: bool = False
    validate: bool = True
    features: FeatureSettings = field(default_factory=FeatureSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    cleaning: Cleaning = field(default_factory=Cleaning)
    alphas: tuple = DEFAULT_ALPHAS
    alpha_per_voxel: bool = True
    alpha_score: str = "r"
    inner_cv: InnerCV = field(default_factory=InnerCV)
    mem: int | None = None
    voxel_chunk: int | None = None
    tf32: bool = False
    n_permutations: int = 1000
    pvalue_method: str = "prewhitening"  # or circular, blocks, none
    progress: bool = True

    @property
    def feature_cache_dir(self):
        return Path(self.feature_cache) if self.feature_cache else Path(self.work_dir) / "features"


def resolve_device(device):
    """``auto`` becomes ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    from bids_encoding.errors import UsageError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was given but no CUDA GPU is visible: use --device cpu or auto")
    return device
