"""Settings of one run of either level, gathered from the command line and config file, and saved as TOML
beside the run's log."""

import json
import math
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from bids_encoding.design import Cleaning, DesignSettings
from bids_encoding.features import FeatureSettings
from bids_encoding.features.joint import JointSettings
from bids_encoding.features.models import Placement
from bids_encoding.features.speech import SpeechSettings
from bids_encoding.inputs.confounds import ConfoundSettings
from bids_encoding.inputs.masks import DEFAULT_EPI_LOWER_CUTOFF
from bids_encoding.ridge import DEFAULT_ALPHAS, InnerCV

DEFAULT_MODELS = ("sentence-transformers/all-MiniLM-L6-v2",)
RESOLVED = "resolved"  # the table of a saved configuration that says what the options resolved to


@dataclass
class RunConfig:
    """What both levels take: the dataset, the output and work folders, and which participants and task."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    participant_labels: list | None = None  # without sub- (the parser's --participant-label strips it)
    task: str | None = None
    nprocs: int | None = None  # CPUs this job may use (None: those available to it)
    omp_nthreads: int | None = None  # threads of the numerical libraries (None: nprocs)


@dataclass
class ParticipantConfig(RunConfig):
    """Everything the participant level needs; every field ends up in the sidecars."""

    space: str | None = None
    resolution: str | None = None  # res- entity of the preprocessed BOLD
    derivatives: tuple | None = None  # folders of preprocessed BOLD; None: found under BIDS_DIR/derivatives
    mask: Path | None = None
    epi_mask_cutoff: float = DEFAULT_EPI_LOWER_CUTOFF
    confounds: ConfoundSettings = field(default_factory=ConfoundSettings)
    average: bool = False  # also fit the average participant of each stimulus sequence (sub-average)
    data_scaling: object = None  # --data-scaling: a DataScaling (participant/datascaling.py), or None
    bold_filters: dict | None = None  # entity queries on the BOLD files (--bids-filter-file's "bold")
    stimuli: str | None = None  # a preset name or a stimulus specification file; None: events.tsv word rows
    cv_unit: str | None = None  # run (per task) or stimulus (tasks pooled); None: the specification's
    transcripts: Path | None = None  # --transcripts: a folder of original texts (inputs/transcripts.py)
    transcript_min_match: float = 0.9  # the fraction of a run's timed words that must match its transcript
    models: tuple = DEFAULT_MODELS
    device: str = "cpu"
    dtype: str | None = None
    trust_remote_code: bool = False
    feature_cache: Path | None = None
    ffn_neurons: bool = False
    speech: SpeechSettings = field(default_factory=SpeechSettings)  # speech models' frames (--speech-mode)
    neurons: object = None  # NeuronSettings of the neurons-to-networks analysis (--neuron-patterns), or None
    joint_models: tuple = ()  # --joint-model: ((label or None, (space, ...)), ...); their spaces join models
    joint: JointSettings = field(default_factory=JointSettings)  # how joint models are fitted
    placement: Placement = field(default_factory=Placement)  # a model across devices (--device-map, ...)
    validate: bool = True
    recompute: bool = False  # fit again even what a complete, valid result in the output folder already holds
    remove_models: tuple = ()  # committed results of these models (labels or ids) are removed; others not named kept
    features: FeatureSettings = field(default_factory=FeatureSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    cleaning: Cleaning = field(default_factory=Cleaning)
    average_cleaning: Cleaning = field(default_factory=Cleaning)  # the average participant's (no smoothing)
    procedure: str = "default"  # a preset of bids_encoding.procedures: the seed's steps (docs/ridge.md)
    resampled_dir: Path | None = None  # set while a run resamples BOLD (a procedure's grid): its resampled runs
    test_stimulus: str | None = None  # most-presented: one outer fold, that stimulus held out; None: leave one out
    ridge_dtype: str = "float32"  # float64: a procedure's (the seed's numpy precision)
    alphas: tuple = DEFAULT_ALPHAS
    alpha_per_voxel: bool = True
    alpha_score: str = "r"
    inner_cv: InnerCV = field(default_factory=InnerCV)
    mem: int | None = None
    voxel_chunk: int | None = None
    tf32: bool = False
    n_permutations: int = 1000
    pvalue_method: str = "prewhitening"  # or circular, blocks, none
    pvalue_layers: str = "all"  # layers with p and q maps: all, or best only
    ridge_rank: int | None = None  # approximate dual form: ridge on a randomized rank-K approximation of the features
    surface: str = "auto"  # maps on fsaverage5: auto (fMRIPrep surface BOLD, else projected), volume, none
    isc_cache: bool = False  # keep each participant's cleaned BOLD for the group's inter-subject correlation
    progress: bool = True

    @property
    def feature_cache_dir(self):
        return Path(self.feature_cache) if self.feature_cache else Path(self.work_dir) / "features"


@dataclass
class GroupConfig(RunConfig):
    """Everything the group level needs: it reads the participant results in ``output_dir``."""

    atlas: str | None = None
    roi_file: Path | None = None
    n_bootstraps: int = 2000
    reliable_fraction: float = 0.25
    mask_threshold: float = 1.0  # fraction of participants whose masks must have a voxel (1: intersection)
    neurovault: bool = False  # --neurovault: the maps as a NeuroVault collection in OUTPUT_DIR/neurovault/


@dataclass
class DatasetsConfig(RunConfig):
    """The datasets level: ``bids_dir`` is the folder of the output folders to combine (one per dataset)."""

    roi_file: Path | None = None
    datasets: list | None = None  # their names (subfolders of bids_dir) or paths; None: every one found
    neurovault: bool = False  # --neurovault: the maps as a NeuroVault collection in OUTPUT_DIR/neurovault/


def save_config(config, path, options, level, command):
    """Write the effective configuration as TOML: the run's ``options`` (every option after the config file and
    the command line, as ``--config-file`` reads them), then, under ``[resolved]``, what they resolved to (the
    config dataclass; ``--config-file`` skips it). Settings that are None are left out (TOML has no null)."""
    text = (f"# effective configuration of: {command}\n"
            f"# rerun it with: bids_encoding BIDS_DIR OUTPUT_DIR {level} --config-file {path}\n"
            + to_toml({**options, RESOLVED: asdict(config)}))
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)


def to_toml(data, table=""):
    """A dict of scalars, lists and nested dicts as TOML (nested dicts become tables)."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items()
             if value is not None and not isinstance(value, dict)]
    text = (f"\n[{table}]\n" if table and lines else "") + "".join(line + "\n" for line in lines)
    for key, value in data.items():
        if isinstance(value, dict):
            text += to_toml(value, f"{table}.{key}" if table else key)
    return text


def _toml_value(value):
    if is_dataclass(value):
        value = asdict(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    return json.dumps(str(value))


def available_cpus():
    """CPUs this process may use: Slurm's allocation when it says so, else the CPU affinity."""
    import os

    for variable in ("SLURM_CPUS_PER_TASK", "PBS_NUM_PPN", "NSLOTS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def limit_threads(config):
    """Hold the numerical libraries (torch, BLAS, OpenMP) to ``config.omp_nthreads`` threads, so that jobs
    sharing a node do not oversubscribe it; returns the number used."""
    import os

    nprocs = config.nprocs or available_cpus()
    threads = min(config.omp_nthreads or nprocs, nprocs)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    return threads


def resolve_device(device):
    """``auto`` becomes ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    from bids_encoding.errors import UsageError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was given but no CUDA GPU is visible: use --device cpu or auto")
    return device
