"""Command-line options: the BIDS-Apps parser, whose typed converters (``type=``) check each option's values as
they are read, from the command line or a config file; then the checks of options together that turn them into a
configuration."""

import argparse
import json
import math
import os
import re
import sys
import tomllib
from pathlib import Path

from bids_encoding import __version__, version_line
from bids_encoding.config import RESOLVED
from bids_encoding.errors import BidsAppError, MissingInputError, UsageError

LEVELS = ("participant", "group", "words", "datasets")
# Options that earlier versions of bids_encoding, or other BIDS-Apps, take under another name: what to write now.
RENAMED_OPTIONS = {
    "--permutation-scheme": "--pvalue-method circular or --pvalue-method blocks (renamed in 0.2.0)",
    "--nthreads": "--nprocs (fMRIPrep's older name)",
    "--mem-mb": "--mem with a unit, e.g. --mem 8GB (fMRIPrep's --mem_mb takes megabytes)",
}
NOT_FROM_CONFIG = {"help", "version", "config_file", "bids_dir", "output_dir", "analysis_level"}


class BidsAppParser(argparse.ArgumentParser):
    """argparse whose errors are one-line usage errors (:class:`UsageError`: the BIDS-Apps usage exit code, 64,
    instead of argparse's usage text and 2)."""

    def error(self, message):
        """Raise the error, naming an option by its dashed spelling (``--epi-mask-cutoff: give a number in (0, 1),
        not 1.5``), not by all of them (``argument --epi-mask-cutoff/--epi_mask_cutoff: ...``); where it names no
        option (missing or unknown arguments), pointing to ``--help``."""
        names, colon, rest = message.partition(": ")
        if colon and names.startswith("argument "):
            spellings = names.removeprefix("argument ").split("/")
            message = f"{next((name for name in spellings if name.startswith('--')), spellings[0])}: {rest}"
        else:  # missing or unknown arguments
            message += f"; see {self.prog} --help"
        raise UsageError(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, written once, compactly (``1 10 100``), and not at all when there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS or "(default" in text:
            return text
        values = default if isinstance(default, (list, tuple)) else [default]
        shown = " ".join(f"{value:g}" if isinstance(value, float) else str(value) for value in values)
        return f"{text} (default: {shown})"


def _option(group, *names, **kwargs):
    """Add an option under its dashed name with an underscore alias (as fMRIPrep)."""
    aliases = ["--" + name[2:].replace("-", "_") for name in names if name.startswith("--") and "-" in name[2:]]
    group.add_argument(*names, *aliases, **kwargs)


def _at_least(minimum):
    """The ``type=`` of an option of whole numbers ``>= minimum``.

    Examples
    --------
    >>> _at_least(2)("3")
    3
    >>> _at_least(2)("1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: give a whole number >= 2, not 1
    """
    def whole_number(text):
        try:
            value = int(str(text).strip())
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"give a whole number >= {minimum}, not {text}")
        return value

    whole_number.value_type = int  # what boutiques.py describes
    return whole_number


def _in_range(low, high=math.inf, high_included=False):
    """The ``type=`` of an option of numbers above ``low`` and below ``high`` (or up to it, ``high_included``).

    Examples
    --------
    >>> _in_range(0, 1, high_included=True)("1")
    1.0
    >>> _in_range(0)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: give a number > 0, not 0
    """
    interval = f"> {low:g}" if high == math.inf else f"in ({low:g}, {high:g}{']' if high_included else ')'}"

    def number(text):
        try:
            value = float(str(text).strip())
        except ValueError:
            value = math.nan
        if not (low < value and (value < high or (high_included and value == high))):
            raise argparse.ArgumentTypeError(f"give a number {interval}, not {text}")
        return value

    number.value_type = float
    return number


def _bare_label(entity):
    """The ``type=`` of an option of BIDS labels given with or without their entity's prefix.

    Examples
    --------
    >>> [_bare_label("sub")(label) for label in ("sub-01", "02")]
    ['01', '02']
    """
    def label(text):
        return str(text).strip().removeprefix(f"{entity}-")

    return label


def _existing_directory(text):
    """The ``type=`` of an option naming a folder that must exist."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


def _compcor_count(text):
    """``--n-compcor``: a number of components or ``all`` (as text)."""
    if not (str(text) == "all" or str(text).isdigit()):
        raise argparse.ArgumentTypeError(f"give a number of components or 'all', not {text}")
    return str(text)


def _memory(text):
    """``--mem``: a size :func:`parse_memory` reads, checked and kept as written (upper case), so that a saved
    configuration reads back the same."""
    parse_memory(text)
    return str(text).strip().upper()


def _device_memory(text):
    """``--max-memory``'s ``DEVICE=SIZE``, checked, the size in upper case (as accelerate's max_memory takes it).

    Examples
    --------
    >>> _device_memory("0=40gb")
    '0=40GB'
    """
    device, _, size = str(text).partition("=")
    try:
        parse_memory(size)
    except argparse.ArgumentTypeError:
        size = ""
    if not size or not (device.isdigit() or device in ("cpu", "disk", "mps")):
        raise argparse.ArgumentTypeError(f"write DEVICE=SIZE, e.g. 0=40GB or cpu=120GB, not {text}")
    return f"{device}={size.upper()}"


class BidsFilters(dict):
    """``--bids-filter-file``'s ``bold`` queries (pybids entity names), and the file they were read from (what a
    saved configuration records)."""

    def __init__(self, queries=(), path=None):
        super().__init__(queries)
        self.path = path


def _bids_filters(text):
    """``--bids-filter-file``: the JSON file read and checked, its ``bold`` queries returned (fMRIPrep's short
    entity names accepted; ``datatype``, ``suffix`` and ``extension`` are the app's own)."""
    path = Path(text)
    if not path.is_file():
        raise MissingInputError(f"--bids-filter-file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("bold", {}), dict):
        raise argparse.ArgumentTypeError(f"{path}: write {{\"bold\": {{\"<entity>\": <value>}}}}")
    short = {"acq": "acquisition", "ses": "session", "rec": "reconstruction", "dir": "direction", "ce": "ceagent"}
    return BidsFilters({short.get(key, key): value for key, value in data.get("bold", {}).items()
                        if key not in ("datatype", "suffix", "extension")}, path.resolve())


_bids_filters.value_type = Path


def build_parser():
    """The participant/group parser."""
    from bids_encoding.config import DEFAULT_MODELS
    from bids_encoding.design import DEFAULT_HIGH_PASS, DESIGNS, DesignSettings
    from bids_encoding.features.settings import POOLINGS
    from bids_encoding.inputs.confounds import MODELS as CONFOUND_MODELS
    from bids_encoding.inputs.confounds import STRATEGIES as CONFOUND_STRATEGIES
    from bids_encoding.inputs.confounds import ConfoundSettings
    from bids_encoding.inputs.masks import DEFAULT_EPI_LOWER_CUTOFF
    from bids_encoding.procedures import DEFAULT as DEFAULT_PROCEDURE
    from bids_encoding.procedures import PROCEDURES
    from bids_encoding.ridge.cv import ALPHA_SCORES, DEFAULT_ALPHAS, INNER_SCHEMES
    from bids_encoding.ridge.significance import PVALUE_METHODS

    parser = BidsAppParser(
        prog="bids_encoding",
        description="Voxel-wise encoding models of language-model features on a BIDS dataset of "
                    "people listening to stories. Also: 'bids_encoding demo OUT_DIR'.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="root folder of the BIDS dataset (read only)")
    parser.add_argument("output_dir", type=Path, help="folder for the BIDS-Derivatives outputs")
    parser.add_argument("analysis_level", help="'participant', then 'group' (reads the participant results "
                                               "in output_dir); 'words' writes the word timings that --stimuli "
                                               "finds as BIDS events in output_dir, to inspect and correct; "
                                               "'datasets' combines several datasets' results (BIDS_DIR: the "
                                               "folder of their output folders)")
    parser.add_argument("--version", action="version", version=version_line())

    selection = parser.add_argument_group("what to analyse")
    _option(selection, "--participant-label", type=_bare_label("sub"), nargs="+", metavar="LABEL", default=None,
            help="participants to analyse, with or without 'sub-' (default: all)")
    _option(selection, "-t", "--task", default=None, help="task label (default: every task)")
    _option(selection, "--stimuli", default=None, metavar="PRESET|FILE|DIR",
            help="where the word timings are: a preset (lpp, lpp-en, lpp-fr, lpp-cn, narratives, lebel), a "
                 "stimulus specification TOML file (docs/stimuli.md), or a folder the 'words' level wrote "
                 "(default: word rows of the events.tsv)")
    _option(selection, "--transcripts", type=_existing_directory, default=None, metavar="DIR",
            help="a folder of original texts (cased, punctuated; UTF-8) that the language models read instead "
                 "of the timed words, aligned to them (docs/stimuli.md): for each run the first of "
                 "<audio file stem>.txt, task-<task>_run-<run>.txt, task-<task>.txt, <task>.txt (default: the "
                 "stimulus specification's transcript, e.g. Narratives' transcript.txt, else none)")
    _option(selection, "--transcript-min-match", type=_in_range(0, 1), default=0.9, metavar="FRACTION",
            help="a run whose timed words match its transcript less than this stops")
    _option(selection, "--cv-unit", choices=("run", "stimulus"), default=None,
            help="units of cross-validation: 'run' (each task on its own) or 'stimulus' (a participant's tasks "
                 "pooled; one task per story) (default: the stimulus specification's, else run)")
    _option(selection, "--space", default=None,
            help="keep BOLD files with this space- entity (default: the files' own space; "
                 "files without one are labelled space-orig)")
    _option(selection, "--derivatives", type=Path, nargs="+", default=None, metavar="PATH",
            help="folders of preprocessed BOLD (e.g. fMRIPrep's output; several allowed) (default: "
                 "BIDS_DIR/derivatives/<pipeline>/, else BIDS_DIR/derivatives/ when it holds sub-* folders)")
    _option(selection, "--res", "--resolution", dest="resolution", default=None, metavar="LABEL",
            help="keep preprocessed BOLD with this res- entity (e.g. 2, native)")
    _option(selection, "--mask", type=Path, default=None,
            help="brain mask NIfTI (default: the derivative's brain masks, else the template's brain mask "
                 "from TemplateFlow, else one computed from the EPI; docs/inputs.md)")
    _option(selection, "--epi-mask-cutoff", type=_in_range(0, 1), default=DEFAULT_EPI_LOWER_CUTOFF,
            help="lower cutoff of the EPI-computed mask (nilearn compute_epi_mask); lower keeps more of the "
                 "darker edges of the brain")
    _option(selection, "--average-participants", action="store_true", default=False,
            help="also fit the average of the participants who heard the same stimuli on the same grid "
                 "(Bonnasse-Gahot & Pallier's main analysis), written as sub-average")
    _option(selection, "--session-label", type=_bare_label("ses"), nargs="+", metavar="LABEL", default=None,
            help="sessions to analyse, with or without 'ses-' (default: all)")
    _option(selection, "--bids-filter-file", type=_bids_filters, default=None, metavar="FILE",
            help="JSON of entity queries on the BOLD files, as fMRIPrep's: {\"bold\": {\"acquisition\": \"mb\"}} "
                 "(a value, a list, or null for an absent entity)")
    _option(selection, "--skip-bids-validation", action="store_true", default=False,
            help="do not run bids-validator on the input first (participant and words levels; its report goes to "
                 "OUTPUT_DIR/logs), and index files whose names are not valid BIDS too")

    confounds = parser.add_argument_group("confounds (fMRIPrep derivatives; nilearn load_confounds)")
    _option(confounds, "--confounds", nargs="+", choices=CONFOUND_STRATEGIES, default=[], metavar="STRATEGY",
            help="noise components regressed out of each run's BOLD: " + ", ".join(CONFOUND_STRATEGIES) +
                 " (default: none); high_pass cosines and scrub's censoring apply to the design too")
    for name, choices in (("motion", CONFOUND_MODELS), ("wm-csf", CONFOUND_MODELS),
                          ("global-signal", CONFOUND_MODELS),
                          ("compcor", ("anat_combined", "anat_separated", "temporal", "temporal_anat_combined",
                                       "temporal_anat_separated"))):
        _option(confounds, f"--{name}", choices=choices, default=getattr(ConfoundSettings, name.replace("-", "_")),
                help=f"columns of the {name.replace('-', '_')} strategy")
    _option(confounds, "--n-compcor", type=_compcor_count, default="all", help="CompCor components: a number or all")
    _option(confounds, "--scrub", type=int, default=ConfoundSettings.scrub,
            help="scrub: also censor segments shorter than this many scans")
    _option(confounds, "--fd-threshold", type=float, default=ConfoundSettings.fd_threshold,
            help="scrub: framewise displacement (mm) above which a scan is censored")
    _option(confounds, "--std-dvars-threshold", type=float, default=ConfoundSettings.std_dvars_threshold,
            help="scrub: standardized DVARS above which a scan is censored")

    models = parser.add_argument_group("language models")
    _option(models, "--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
            help="hub ids (id@revision to pin), local model directories, .gguf files, untrained:<model>, "
                 "baselines random:token[:DIM], random:type[:DIM], wordrate, wordlength, wordfreq[:LANG], phonemes, "
                 "or static word vectors vectors:FILE (GloVe or word2vec text)")
    _option(models, "--layers", nargs="+", default=None, metavar="LAYER",
            help="layers to fit: indices (0 = embeddings, -1 = last) or relative depths (0.25 0.5 1.0); "
                 "default: all")
    _option(models, "--pooling", choices=POOLINGS, default="last",
            help="word vector: hidden state of the word's last token, or mean of its tokens")
    _option(models, "--window-tokens", type=_at_least(2), default=None,
            help="tokens per forward pass (default: the model's maximum)")
    _option(models, "--context-tokens", type=_at_least(0), default=None,
            help="minimum left context of every token (default: the largest that keeps every token to at "
                 "most two passes: half the window)")
    _option(models, "--right-context-tokens", type=_at_least(0), default=None,
            help="encoder models (BERT-like): minimum right context of every token (default: 0)")
    _option(models, "--continuous-context", action="store_true", default=False,
            help="runs of a task continue one story: each run's first words get the previous run's "
                 "last tokens as context")
    _option(models, "--batch-size", type=_at_least(1), default=None,
            help="windows per forward pass (default: sized to the free device memory)")
    _option(models, "--trust-remote-code", action="store_true", default=False,
            help="let transformers run Python code shipped with a hub model (needed by some "
                 "architectures; only for models you trust)")
    _option(models, "--ffn-neurons", action="store_true", default=False,
            help="also cache each layer's feed-forward activations per word (input of the block's second "
                 "feed-forward linear layer) for neuron-to-network analyses")
    _option(models, "--speech-mode", choices=("window", "chunked"), default="window",
            help="speech models (HuBERT, WavLM, wav2vec 2.0, Whisper): window = Antonello et al.'s causal 16.1 s "
                 "window per 0.1 s frame (each frame sees its past only); chunked = one pass per 10 s of frames "
                 "with 16 s of audio before (much cheaper; frames also see the rest of their chunk)")
    _option(models, "--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
            help="model dtype (auto: bfloat16 on a GPU that supports it, else float32)")

    _option(models, "--device-map", choices=("auto", "balanced", "balanced_low_0", "sequential"), default=None,
            help="place a model that does not fit one device across several GPUs, the CPU and disk (accelerate's "
                 "device_map; disk offload goes to WORK_DIR/offload)")
    _option(models, "--max-memory", type=_device_memory, nargs="+", metavar="DEVICE=SIZE", default=None,
            help="with --device-map: memory per device, e.g. 0=40GB 1=40GB cpu=120GB")
    _option(models, "--quantize", choices=("8bit", "4bit"), default=None,
            help="load model weights in 8 or 4 bits (bitsandbytes, CUDA only; the features differ from full "
                 "precision and are cached apart)")

    fit = parser.add_argument_group("design and fit")
    _option(fit, "--procedure", choices=tuple(PROCEDURES), default=DEFAULT_PROCEDURE,
            help="every step as a seed paper's code does it: bgp2024 (Bonnasse-Gahot & Pallier's "
                 "llms_brain_lateralization: 4 mm grid, symmetric EPI mask, whole-run cleaning, z-scored design, "
                 "one alpha on the first training run; docs/ridge.md). It fixes the options it covers: giving "
                 "another value for them is refused")
    _option(fit, "--trim-scans", type=_at_least(0), nargs="+",
            default=[DesignSettings.trim_start, DesignSettings.trim_end], metavar=("START", "END"),
            help="scans dropped at the start and at the end of every run (BOLD and design; one number: both); "
                 "both seed papers drop the first 10, Antonello et al. the last 5, Bonnasse-Gahot & Pallier "
                 "the last 10")
    _option(fit, "--hrf-model", default=DesignSettings.hrf_model, help="nilearn HRF model")
    _option(fit, "--high-pass", type=float, default=DEFAULT_HIGH_PASS,
            help="high-pass cutoff in Hz of the per-run cleaning of BOLD and design (0: none)")
    _option(fit, "--design", choices=tuple(DESIGNS), default="hrf",
            help="hrf: features convolved with the HRF (Bonnasse-Gahot & Pallier); lanczos-fir: Lanczos "
                 "resampling to scan times then FIR delays (Antonello et al.)")
    _option(fit, "--fir-delays", type=int, nargs="+", default=[1, 2, 3, 4], metavar="SCANS",
            help="delays in scans for --design lanczos-fir")
    _option(fit, "--alphas", type=_in_range(0), nargs="+", default=list(DEFAULT_ALPHAS), metavar="ALPHA",
            help="ridge penalties to choose from (default: 17 values, logspace(0, 8, 17): 1 to 1e8)")
    _option(fit, "--alpha-choice", choices=("voxel", "shared"), default="voxel",
            help="one alpha per voxel, or one shared by all voxels of a participant (Bonnasse-Gahot & Pallier)")
    _option(fit, "--alpha-score", choices=ALPHA_SCORES, default="r",
            help="what alphas and layers are chosen on: validation Pearson r (the seed papers) or validation R² "
                 "(himalaya, Gallant lab; keeps R² of unpredictable voxels near 0), or huth-r2, Antonello et al.'s "
                 "bootstrap_ridge score (signed square root of 1 - var(residual) / ((1 + var) / 2))")
    _option(fit, "--inner-cv", choices=INNER_SCHEMES, default="loro",
            help="how alphas (and layers) are chosen inside each outer fold: leave one training run out, "
                 "the last training run (single), the first (first: Bonnasse-Gahot & Pallier), contiguous chunks, "
                 "bootstrapped chunks (Huth lab), or huth-bootstrap: Antonello et al.'s bootstrap_ridge draws "
                 "exactly (Python's random, seeded)")
    _option(fit, "--inner-chunks", type=_at_least(2), default=5, help="number of chunks for --inner-cv chunks")
    _option(fit, "--bootstraps", type=_at_least(1), default=20, help="draws for --inner-cv bootstrap")
    _option(fit, "--chunk-length", type=_at_least(1), default=40, help="scans per chunk for --inner-cv bootstrap")
    _option(fit, "--held-out", type=float, default=0.2,
            help="fraction of chunks held out per draw for --inner-cv bootstrap")
    _option(fit, "--pvalue-method", choices=PVALUE_METHODS + ("none",), default="prewhitening",
            help="per-voxel p-values of r: prewhitening (AR(4) of the held-out data, calibrated for smooth "
                 "series), circular shifts or shuffled blocks of the held-out predictions, or none")
    _option(fit, "--permutations", type=_at_least(1), default=1000,
            help="permutations for --pvalue-method circular or blocks")
    _option(fit, "--pvalue-layers", choices=("all", "best"), default="all",
            help="layers that get p and q maps: every layer, or the best layer only (the cheaper schedule of "
                 "studies with many layers and models; the best layer's maps are the same either way)")

    _option(fit, "--ridge-rank", type=_at_least(1), default=None, metavar="K",
            help="approximate: fit ridge on the best rank-K approximation of each layer's features, from a "
                 "randomized range finder, in the dual form (for very many features and scans together: "
                 "FIR-stacked features of large models on long datasets); off by default: the exact fit "
                 "(docs/ridge.md)")
    _option(fit, "--surface", choices=("auto", "volume", "none"), default="auto",
            help="maps on the cortical surface (fsaverage5, GIFTI): auto fits fMRIPrep's own surface BOLD "
                 "(space-fsaverage*) where every run has it, else projects the volume maps of an MNI space; volume "
                 "always projects; none writes no surface maps (docs/outputs.md)")
    _option(fit, "--isc-cache", action="store_true",
            help="keep each participant's cleaned BOLD (float32, in sub-<label>/cache/) so that the group level's "
                 "inter-subject correlation reads it instead of reading and cleaning every run again; costs "
                 "scans x voxels x 4 bytes per run on disk (docs/group.md)")

    joint = parser.add_argument_group("joint models of several feature spaces (docs/joint.md)")
    _option(joint, "--joint-model", nargs="+", default=[], metavar="[NAME=]SPACE+SPACE[+...]",
            help="encoding models of several feature spaces each (--models entries joined by '+', e.g. "
                 "gpt2+wordrate+phonemes; each space is also fitted alone): the joint r and R², each space's split "
                 "scores and unique variance")
    _option(joint, "--joint-solver", choices=("banded", "stacking"), default="banded",
            help="banded ridge (one penalty per space and voxel, as himalaya's MultipleKernelRidgeCV) or stacked "
                 "regression (convex weights of the spaces' predictions, Lin et al. 2024; Antonello et al.)")
    _option(joint, "--joint-layer", type=_layer_or_best, default="best",
            help="the layer of a joint model's language model: best (per outer fold, the layer whose own fit has "
                 "the best mean inner-validation score) or an index (0 = embeddings)")
    _option(joint, "--joint-candidates", type=_at_least(1), default=20,
            help="banded ridge: candidate weightings of the spaces (random search; the first is uniform)")
    _option(joint, "--no-unique-variance", action="store_true", default=False,
            help="skip the fits of each joint model without each of its spaces (their unique variance)")
    _option(joint, "--data-scaling", type=_at_least(1), nargs="*", metavar="N_STIMULI", default=None,
            help="also refit each outer fold on random subsets of N of its training stimuli (default sizes: 1, 2, "
                 "4, ... and all), tested on the same held-out stimulus: the score against the amount of training "
                 "data (Antonello et al.'s RQ2), per model at its best layer (_datascaling.tsv)")
    _option(joint, "--data-scaling-draws", type=_at_least(1), default=3,
            help="--data-scaling: random subsets per size")

    neurons = parser.add_argument_group("neurons to brain networks (Sun et al. 2024; docs/neurons.md)")
    _option(neurons, "--neuron-patterns", type=_at_least(2), default=None, metavar="K",
            help="learn K temporal patterns of the models' feed-forward neurons (64 as reported), fit them as an "
                 "encoding model and match each pattern's map to a functional network (implies --ffn-neurons)")
    _option(neurons, "--neuron-method", choices=("dictionary", "ica"), default="dictionary",
            help="how the patterns are learned: sparse dictionary learning over neurons (as reported), or temporal "
                 "ICA (separates only non-Gaussian patterns; docs/neurons.md)")
    _option(neurons, "--network-atlas", default="Schaefer7",
            help="networks to match: Schaefer7 or Schaefer17 (Yeo's 7 or 17 networks, TemplateFlow, in the "
                 "outputs' template space), or a NIfTI of network labels with a TSV of the same name (index, name)")
    _option(neurons, "--neuron-permutations", type=_at_least(1), default=1000,
            help="voxel permutations of each pattern map for the null of its network match (FDR 0.05 over patterns)")
    _option(neurons, "--neuron-sparsity", type=_in_range(0), default=0.1,
            help="L1 penalty of the neurons' codes in dictionary learning")

    group = parser.add_argument_group("group level")
    _option(group, "--atlas", choices=("HarvardOxford", "Schaefer2018"), default=None,
            help="also report atlas parcels (TemplateFlow, in the outputs' template space)")
    _option(group, "--roi-file", type=Path, default=None,
            help="TSV of language ROIs (name, x, y, z in left-hemisphere MNI mm; 10 mm spheres mirrored to the "
                 "right) replacing the built-in ones")
    _option(group, "--reliable-fraction", type=_in_range(0, 1, high_included=True), default=0.25,
            help="fraction of the mask counted as reliable voxels, by inter-subject correlation (or else the "
                 "noise ceiling from repeated stimuli); 0.25: the top quartile, as Bonnasse-Gahot & Pallier")
    _option(group, "--group-mask-threshold", type=_in_range(0, 1, high_included=True), default=1.0,
            help="fraction of participants whose brain masks must hold a voxel for the group mask (1: their "
                 "intersection; 0.5: the union of voxels that half of them have); the group mask is then made "
                 "symmetric; means use the participants who have the voxel, t maps the voxels every "
                 "participant has")
    _option(group, "--group-bootstraps", type=_at_least(10), default=2000,
            help="bootstrap resamples of participants for the scaling slopes' confidence intervals")
    _option(group, "--neurovault", action="store_true", default=False,
            help="group and datasets levels: also write the unthresholded maps as a NeuroVault collection, ready "
                 "to upload (OUTPUT_DIR/neurovault/<level>/: collection.json, images.json, the images, upload.py "
                 "with pynv)")

    across = parser.add_argument_group("datasets level (BIDS_DIR: a folder of this app's output folders, one per "
                                       "dataset; docs/group.md)")
    _option(across, "--datasets", nargs="+", default=None, metavar="NAME",
            help="the output folders to combine: subfolders of BIDS_DIR by name, or paths (default: every output "
                 "folder of bids_encoding in BIDS_DIR)")

    run = parser.add_argument_group("running")
    _option(run, "-w", "--work-dir", type=Path, default=None,
            help="intermediate files and feature cache (default: OUTPUT_DIR/work)")
    _option(run, "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where models and fits run")
    _option(run, "--nprocs", "--n-cpus", type=_at_least(1), default=None,
            help="CPUs this job may use (default: Slurm's SLURM_CPUS_PER_TASK, else the CPUs available to the "
                 "process); give each of several jobs on one node its share")
    _option(run, "--omp-nthreads", type=_at_least(1), default=None,
            help="threads of torch, BLAS and OpenMP (default: --nprocs; never more)")
    _option(run, "--mem", type=_memory, default=None, metavar="SIZE",
            help="memory the ridge fit may use beyond the data, e.g. 8GB or 500MB (default: a quarter of the "
                 "available RAM; on a GPU, 80%% of its free memory)")
    _option(run, "--voxel-chunk", type=_at_least(1), default=None, help="voxels per block (overrides --mem)")
    _option(run, "--tf32", action="store_true", default=False, help="allow TF32 matrix products on the GPU")
    _option(run, "--feature-cache", type=Path, default=None,
            help="feature cache shared by several output folders and jobs (default: WORK_DIR/features)")
    _option(run, "--recompute", action="store_true", default=False,
            help="participant level: fit again the participant × model results that the output folder already "
                 "holds complete, with the same settings, inputs and code (by default they are kept), and "
                 "ignore the layer fits that a stopped run left in WORK_DIR/fits")
    _option(run, "--remove-models", nargs="+", default=[], metavar="MODEL",
            help="participant level: remove the results of these models (labels as in the file names, or as "
                 "given to --models earlier) from the participants of this run; the results of models that "
                 "--models does not name are kept otherwise")
    _option(run, "--reports-only", action="store_true", default=False,
            help="rebuild the HTML reports (participant: sub-<label>.html; group: group.html) from the outputs "
                 "already in OUTPUT_DIR, fitting nothing")
    _option(run, "--skip-reports", action="store_true",
            default=os.environ.get("BIDS_ENCODING_SKIP_REPORTS", "") not in ("", "0"),
            help="write no HTML report (e.g. in cluster job arrays; build them later with --reports-only); "
                 "the environment variable BIDS_ENCODING_SKIP_REPORTS=1 sets it too")
    _option(run, "--plan", action="store_true", default=False,
            help="participant level: print the work (participants, models, layers, cached features), the memory "
                 "a job needs and the expected time of the features and fits, and stop (docs/hpc.md)")
    _option(run, "--features-only", action="store_true", default=False,
            help="participant level: compute the features of the selected participants' stimuli into the "
                 "feature cache and stop (the GPU stage of a cluster study; docs/hpc.md)")
    _option(run, "--boilerplate-only", action="store_true", default=False,
            help="participant level: check the inputs and write the methods boilerplate (logs/CITATION.md, "
                 ".html, .bib) for these settings, fitting nothing")
    _option(run, "--config-file", type=Path, default=None,
            help="TOML or JSON file of options (long names as keys); the command line wins")
    _option(run, "-v", "--verbose", action="count", default=0, help="more messages")
    return parser


def load_config_file(path, parser):
    """Read option defaults from a TOML or JSON file.

    Returns
    -------
    dict
        ``{dest: value}`` checked against the parser's options.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise UsageError(f"config file {path} is not valid {kind}: {error}") from error
    actions = {action.dest: action for action in parser._actions}
    defaults = {}
    for key, value in data.items():
        if key == RESOLVED and isinstance(value, dict):
            continue  # a saved configuration's record of what its options resolved to
        dest = key.lstrip("-").replace("-", "_")
        instead = renamed_option("--" + dest)
        if instead:
            raise UsageError(f"config file {path}: '{key}' is not an option of bids_encoding {__version__}: use "
                             f"{instead}")
        if dest == "permutations" and value == 0:
            raise UsageError(f"config file {path}: {PERMUTATIONS_ZERO}")
        if dest not in actions or dest in NOT_FROM_CONFIG:
            raise UsageError(f"config file {path}: unknown option '{key}'")
        action = actions[dest]
        if action.nargs in ("+", "*") and not isinstance(value, list):
            value = [value]
        try:  # as on the command line: argparse converts only the defaults that are strings
            if action.type is not None:
                value = [action.type(v) for v in value] if isinstance(value, list) else action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            raise UsageError(f"config file {path}: bad value for '{key}': {error}") from error
        except BidsAppError as error:  # a file the option names is missing (exit 66)
            raise type(error)(f"config file {path}: {error}") from error
        if action.choices is not None and any(v not in action.choices
                                              for v in (value if isinstance(value, list) else [value])):
            raise UsageError(f"config file {path}: '{key}' must be one of {', '.join(map(str, action.choices))}")
        defaults[dest] = value
    return defaults


def effective_options(args):
    """The options of a parsed command line, after its config file, as a config file holds them (dashed long
    names; paths absolute): the first part of the saved configuration, which ``--config-file`` reads back."""
    options = {}
    for action in build_parser()._actions:
        if action.dest in NOT_FROM_CONFIG or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if isinstance(value, BidsFilters):
            value = value.path
        if isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, (list, tuple)):
            value = [str(v.resolve()) if isinstance(v, Path) else v for v in value]
        if value is not None:
            options[action.dest.replace("_", "-")] = value
    return options


def renamed_option(name):
    """What to write instead of ``name`` (``--old``, ``--old_name`` or ``--old=value``), or ``None``.

    Examples
    --------
    >>> renamed_option("--permutation_scheme=blocks")
    '--pvalue-method circular or --pvalue-method blocks (renamed in 0.2.0)'
    >>> renamed_option("--pvalue-method") is None
    True
    """
    dashed = "--" + str(name).split("=", 1)[0].lstrip("-").replace("_", "-")
    return RENAMED_OPTIONS.get(dashed) if str(name).startswith("--") else None


def _check_renamed(argv):
    """A one-line usage error for an option of earlier versions or other tools, and for ``--permutations 0``
    (how earlier versions turned p-values off)."""
    for position, item in enumerate(argv):
        instead = renamed_option(item)
        if instead:
            raise UsageError(f"{item.split('=', 1)[0]} is not an option of bids_encoding {__version__}: use {instead}")
        name, _, value = str(item).partition("=")
        if name == "--permutations":
            value = value or (argv[position + 1] if position + 1 < len(argv) else "")
            if value.strip() == "0":
                raise UsageError(PERMUTATIONS_ZERO)


PERMUTATIONS_ZERO = ("--permutations 0 no longer turns the p-values off: use --pvalue-method none (--permutations "
                     "sets the number of permutations of --pvalue-method circular or blocks)")


def parse_args(argv):
    """Parse the command line over the config file's values."""
    _check_renamed(argv)
    pre = BidsAppParser(add_help=False)
    pre.add_argument("--config-file", "--config_file", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    parser = build_parser()
    from_file = load_config_file(known.config_file, parser) if known.config_file is not None else {}
    parser.set_defaults(**from_file)
    args = parser.parse_args(argv)
    given = _given_on_command_line(argv) if from_file or args.procedure != "default" else set()
    # the options the user set (a --procedure may not contradict them)
    args.given = given | set(from_file)
    # what the command line changed in the file: the log says so (cli/run.py)
    args.command_line = list(argv)
    args.overridden = {dest: (from_file[dest], getattr(args, dest)) for dest in sorted(given & set(from_file))
                       if from_file[dest] != getattr(args, dest)}
    return args


def _given_on_command_line(argv):
    """The options the command line itself gives (whatever the defaults)."""
    unset = object()
    parser = build_parser()
    parser.set_defaults(**{action.dest: None if isinstance(action, argparse._CountAction) else unset
                           for action in parser._actions if action.dest not in ("help", "version")})
    args = parser.parse_args(argv)
    return {dest for dest, value in vars(args).items() if value is not unset and value is not None}


def _apply_procedure(args):
    """The options a ``--procedure`` fixes, set on ``args``; one it contradicts stops the run (exit 64)."""
    from bids_encoding.procedures import procedure

    preset = procedure(args.procedure)
    for dest, value in preset.options.items():
        given = getattr(args, dest)
        same = given == value or (isinstance(value, list) and given is not None and len(given) == len(value)
                                  and all(math.isclose(float(a), float(b), rel_tol=1e-9)
                                          for a, b in zip(sorted(given), value)))
        if dest in getattr(args, "given", set()) and not same:
            shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in
                             (value if isinstance(value, list) else [value])) or "none"
            raise UsageError(f"--procedure {preset.name} fixes --{dest.replace('_', '-')} ({shown}): leave "
                             f"--{dest.replace('_', '-')} out, or use --procedure default to choose it")
        setattr(args, dest, value)
    return preset


def parse_memory(text):
    """``8GB``, ``500MB``, ``2G`` or a number of megabytes (as fMRIPrep's --mem) -> bytes.

    Examples
    --------
    >>> parse_memory("2G"), parse_memory("1.5gb"), parse_memory(500)
    (2147483648, 1610612736, 524288000)
    """
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)B?\s*", str(text).upper())
    if not match:
        raise argparse.ArgumentTypeError(f"write a size such as 8GB or 500MB, not {text}")
    value, unit = float(match.group(1)), match.group(2) or "M"
    return int(value * 1024 ** "KMGT".index(unit) * 1024)


def _output_paths(args):
    bids_dir = args.bids_dir.resolve()
    output_dir = args.output_dir.resolve()
    if not bids_dir.is_dir():
        raise MissingInputError(f"BIDS dataset {args.bids_dir} does not exist: give the dataset's root folder")
    for name, path in (("output_dir", output_dir),
                       ("--work-dir", args.work_dir.resolve() if args.work_dir else None)):
        if path is not None and (path == bids_dir or bids_dir in path.parents):
            raise UsageError(f"{name} {path} is inside the input dataset {bids_dir}: choose a folder outside it")
    work_dir = args.work_dir.resolve() if args.work_dir else output_dir / "work"
    return bids_dir, output_dir, work_dir


def _bold_filters(args):
    """``--bids-filter-file``'s ``bold`` queries (pybids entity names; fMRIPrep's short names accepted) and
    ``--session-label``."""
    filters = dict(args.bids_filter_file or {})
    if args.session_label:
        filters["session"] = list(args.session_label)
    return filters or None


def _confound_settings(args):
    from bids_encoding.inputs.confounds import ConfoundSettings

    try:
        return ConfoundSettings(strategy=tuple(dict.fromkeys(args.confounds)), motion=args.motion,
                                wm_csf=args.wm_csf, global_signal=args.global_signal, compcor=args.compcor,
                                n_compcor=str(args.n_compcor), scrub=args.scrub, fd_threshold=args.fd_threshold,
                                std_dvars_threshold=args.std_dvars_threshold)
    except ValueError as error:
        raise UsageError(f"--confounds: {error}") from error


def _layer_or_best(text):
    """``best`` or a layer index >= 0."""
    if text == "best" or (text.isdigit() and int(text) >= 0):
        return text
    raise argparse.ArgumentTypeError(f"{text}: best or a layer index (0 = embeddings)")


def _placement(args, work_dir):
    from bids_encoding.features.models import Placement

    memory = tuple(tuple(item.split("=", 1)) for item in args.max_memory or [])
    if memory and not args.device_map:
        raise UsageError("--max-memory needs --device-map (e.g. --device-map auto)")
    return Placement(device_map=args.device_map, max_memory=memory, quantize=args.quantize,
                     offload_folder=str(work_dir / "offload") if args.device_map else None)


def config_from_args(args):
    """Turn parsed arguments into a :class:`~bids_encoding.config.ParticipantConfig` or, for the group level,
    a :class:`~bids_encoding.config.GroupConfig`."""
    from bids_encoding.config import GroupConfig, ParticipantConfig, resolve_device
    from bids_encoding.design import Cleaning, DesignSettings
    from bids_encoding.features import FeatureSettings
    from bids_encoding.features.joint import JointSettings, joint_entries, joint_specs
    from bids_encoding.features.models import parse_model_spec
    from bids_encoding.features.speech import SpeechSettings
    from bids_encoding.inputs.timings.spec import StimulusSpec
    from bids_encoding.neurons.settings import NeuronSettings
    from bids_encoding.participant.datascaling import DataScaling
    from bids_encoding.ridge import InnerCV

    preset = _apply_procedure(args)
    trim = list(args.trim_scans) * (2 if len(args.trim_scans) == 1 else 1)
    if len(trim) != 2:
        raise UsageError("--trim-scans takes START [END]: one or two numbers of scans >= 0")
    both = sorted(set(args.remove_models) & set(args.models or []))
    if both:
        raise UsageError(f"--remove-models {' '.join(both)}: also in --models; remove a model's results by leaving "
                         "it out of --models and naming it in --remove-models")
    if args.layers:
        from bids_encoding.features import resolve_layers

        try:
            resolve_layers(args.layers, 10 ** 6)
        except ValueError as error:
            raise UsageError(f"--layers: {error}") from error
    joint = JointSettings(solver=args.joint_solver, layer=args.joint_layer, n_iter=args.joint_candidates,
                          unique=not args.no_unique_variance)
    joint_specs(joint_entries(args.joint_model), joint, parse_model_spec)  # one-line errors before any work
    bids_dir, output_dir, work_dir = _output_paths(args)
    if args.analysis_level == "datasets":
        from bids_encoding.config import DatasetsConfig

        return DatasetsConfig(bids_dir=bids_dir, output_dir=output_dir, work_dir=work_dir, nprocs=args.nprocs,
                              omp_nthreads=args.omp_nthreads, roi_file=args.roi_file, datasets=args.datasets,
                              neurovault=args.neurovault)
    if args.analysis_level == "group":
        return GroupConfig(bids_dir=bids_dir, output_dir=output_dir, work_dir=work_dir,
                           participant_labels=args.participant_label, task=args.task, nprocs=args.nprocs,
                           omp_nthreads=args.omp_nthreads, atlas=args.atlas,
                           roi_file=args.roi_file, n_bootstraps=args.group_bootstraps,
                           reliable_fraction=args.reliable_fraction, mask_threshold=args.group_mask_threshold,
                           neurovault=args.neurovault)
    return ParticipantConfig(
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=work_dir,
        participant_labels=args.participant_label,
        task=args.task,
        nprocs=args.nprocs,
        omp_nthreads=args.omp_nthreads,
        space=args.space,
        bold_filters=_bold_filters(args),
        stimuli=args.stimuli,
        cv_unit=args.cv_unit or (StimulusSpec.load(args.stimuli).cv_unit if args.stimuli else "run"),
        transcripts=args.transcripts.resolve() if args.transcripts else None,
        transcript_min_match=args.transcript_min_match,
        resolution=args.resolution,
        derivatives=tuple(path.resolve() for path in args.derivatives) if args.derivatives else None,
        mask=args.mask,
        epi_mask_cutoff=args.epi_mask_cutoff,
        confounds=_confound_settings(args),
        average=args.average_participants,
        data_scaling=None if args.data_scaling is None else DataScaling(tuple(args.data_scaling),
                                                                        args.data_scaling_draws),
        models=tuple(dict.fromkeys([*args.models, *(space for _, spaces in joint_entries(args.joint_model)
                                                     for space in spaces)])),
        device=resolve_device(args.device),
        dtype=args.dtype,
        validate=not args.skip_bids_validation,
        recompute=args.recompute,
        remove_models=tuple(args.remove_models),
        trust_remote_code=args.trust_remote_code,
        feature_cache=args.feature_cache.resolve() if args.feature_cache else None,
        ffn_neurons=args.ffn_neurons or bool(args.neuron_patterns),
        speech=SpeechSettings(mode=args.speech_mode),
        neurons=NeuronSettings(n_patterns=args.neuron_patterns, method=args.neuron_method, atlas=args.network_atlas,
                               n_permutations=args.neuron_permutations, sparsity=args.neuron_sparsity)
        if args.neuron_patterns else None,
        placement=_placement(args, work_dir),
        joint_models=joint_entries(args.joint_model),
        joint=joint,
        features=FeatureSettings(pooling=args.pooling, window=args.window_tokens, context=args.context_tokens,
                                 right_context=args.right_context_tokens, batch_size=args.batch_size,
                                 layers=tuple(args.layers) if args.layers else None,
                                 continuous=args.continuous_context, **preset.features),
        design=DesignSettings(kind=args.design, hrf_model=args.hrf_model, trim_start=trim[0], trim_end=trim[1],
                              fir_delays=tuple(args.fir_delays), **preset.design),
        test_stimulus=preset.test_stimulus,
        ridge_dtype=preset.ridge_dtype,
        cleaning=Cleaning(high_pass=args.high_pass or None, **preset.cleaning),
        average_cleaning=Cleaning(high_pass=args.high_pass or None,
                                  **{**preset.cleaning, **preset.average_cleaning}),
        procedure=preset.name,
        alphas=tuple(sorted(args.alphas)),
        alpha_per_voxel=args.alpha_choice == "voxel",
        alpha_score=args.alpha_score,
        inner_cv=InnerCV(args.inner_cv, n_chunks=args.inner_chunks, n_bootstraps=args.bootstraps,
                         chunk_length=args.chunk_length, held_out=args.held_out),
        mem=parse_memory(args.mem),
        voxel_chunk=args.voxel_chunk,
        tf32=args.tf32,
        n_permutations=args.permutations,
        pvalue_method=args.pvalue_method,
        pvalue_layers=args.pvalue_layers,
        isc_cache=args.isc_cache,
        surface=args.surface,
        ridge_rank=args.ridge_rank,
        progress=sys.stderr.isatty(),
    )
