"""``participant --plan``: the work of a participant-level run, the memory a job needs and its expected time,
printed before anything is computed, so that cluster users can size ``--mem``, ``--time`` and the array.

The costs are counts of floating-point operations divided by rates measured on this project's benchmarks
(``benchmarks/results``): they are estimates for sizing jobs, within a factor of about two.
"""

import math
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from bids_encoding.features import resolve_layers
from bids_encoding.participant.surface import surface_bold_runs
from bids_encoding.ridge.memory import Compute, working_memory
from bids_encoding.ridge.solver import shape_form
from bids_encoding.surface import N_VERTICES

# FLOP/s measured on 2 CPU cores (benchmarks/results/bench_ridge.jsonl: 0.17 TFLOP/s in the ridge's main
# products; bench_features.jsonl: 0.07 TFLOP/s for a small GPT-2), scaled linearly with threads. No GPU rate
# has been measured for this project yet: the GPU figures assume 30% of an A100's float32/TF32 peak.
CPU_RATE_PER_THREAD = {"ridge": 0.085e12, "features": 0.035e12}
GPU_RATE = {"ridge": 20e12, "features": 50e12}
TOKENS_PER_WORD = 1.4  # English text with BPE tokenizers
SPEECH_FRAMES_PER_SECOND = 50  # the output frames of wav2vec 2.0, HuBERT, WavLM and Whisper's encoder
PASSES_PER_TOKEN = 2.0  # each token goes through the model about twice (docs/features.md)
PYTHON_OVERHEAD = 1.5 * 2 ** 30  # interpreter, torch, transformers, nilearn
UNMASKED_FRACTION = 0.35
# Per layer, beyond the ridge's arithmetic: the layer's design (HRF, cleaning), the scores, the p-values and the
# maps written. They grow with voxels x scans: 3.6 s per layer for 3 participants x 3,063 voxels x 331 scans on
# 2 threads in the README demo (SmolLM2-135M's and the untrained MiniLM's layers; `layer k fitted (..)` lines of
# its log), 1.2e-6 s per voxel-scan; benchmarks/bench_demo.py records the plan against the demo's own lines.
LAYER_THREAD_SECONDS_PER_VOXEL_SCAN = 2 * 1.2e-6
# What the plan leaves out (start-up, model loading, reading and cleaning the BOLD): --time gets a fixed 15
# minutes plus four times the fits.
SLACK_SECONDS, SLACK_FACTOR = 900, 4
# The neuron analysis (--neuron-patterns) grows with neurons x scans x patterns x (folds + 1): 253 s on 2 threads
# for SmolLM2-135M's 46,080 neurons, 1,084 scans, 64 patterns and 4 folds (benchmarks/results/bench_neurons.jsonl)
NEURON_THREAD_SECONDS = 2 * 253 / (46080 * 1084 * 64 * 5)
FFN_WIDTH = 4  # feed-forward neurons per hidden unit, when the model's config is not read


@dataclass
class ModelPlan:
    label: str
    n_params: int
    n_layers: int
    hidden_size: int
    cached: int  # stimuli whose features are already cached
    feature_flop: float  # the stimuli not cached yet
    fit_flop: float  # per participant, every chosen layer
    baseline: bool = False  # computed on the fly, never cached
    neuron_seconds: float = 0.0  # the neuron analysis (--neuron-patterns), per batch of participants
    layer_seconds: float = 0.0  # per participant, every chosen layer: design, scores, p-values, maps
    joint: bool = False  # a joint model (--joint-model): hidden_size is its columns, delays included

    def fit_seconds(self, ridge_rate):
        return self.fit_flop / ridge_rate + self.neuron_seconds + self.layer_seconds


def _voxels(runs, config):
    """Voxels of the fit: the given or derivative mask's, else an estimate from the BOLD grid (a procedure's
    grid, where it resamples the BOLD)."""
    if config.cleaning.grid is not None:
        return int(np.prod(config.cleaning.grid[1]) * UNMASKED_FRACTION), "estimated on the procedure's grid"
    for path in (config.mask, runs[0].brain_mask):
        if path is not None:
            return int(np.count_nonzero(np.asarray(nib.load(str(path)).dataobj))), "mask"
    grid = np.prod(nib.load(str(runs[0].bold_path)).shape[:3])
    return int(grid * UNMASKED_FRACTION), "estimated"


def passes_per_token(settings, max_tokens):
    """How many times each token goes through the model: a window of ``W`` tokens adds ``W - left - right`` new
    ones (2 with the default half-window context; 16 with 1,024-token windows that add 64 tokens each, as
    ``--procedure bgp2024``). ``max_tokens`` ``None`` (a model without a config): the default's 2."""
    if max_tokens is None:
        return PASSES_PER_TOKEN
    window, left, right = settings.plan(max_tokens, is_encoder=False)
    return window / (window - left - right)


def speech_positions(settings, seconds):
    """Positions a speech model runs through for ``seconds`` of audio (:class:`SpeechSettings`; 50 output frames per
    second): the window mode runs a ``context + stride`` window per frame, the chunked mode each chunk with its
    context."""
    if settings.mode == "window":
        return SPEECH_FRAMES_PER_SECOND * (settings.context + settings.stride) * seconds / settings.stride
    return SPEECH_FRAMES_PER_SECOND * seconds * (settings.chunk + settings.context) / settings.chunk


def _seconds(stimulus):
    """The length of a stimulus's audio (its header; 0 without audio: the run stops before any work)."""
    import soundfile

    try:
        return soundfile.info(str(stimulus.audio)).duration
    except (RuntimeError, OSError, TypeError):
        return 0.0


def ridge_products(n_scans, n_features, n_voxels, n_folds, n_alphas, form=None):
    """Operations of one layer's nested cross-validated ridge, leave-one-run-out in and out:
    ``(products, decompositions)``, the per-voxel products (what benchmarks/bench_ridge.py reports as
    TFLOP/s) and the voxel-independent part. ``form``: the solver's (``NestedRidgeCV._form``) by default.

    - primal: per split, an eigendecomposition of ``XᵀX`` (p × p) and ``2 A n_val p`` per voxel;
    - dual: one eigendecomposition of the kernel (n × n), the hat matrices and the deletion operators; per
      voxel, the fit on all scans (``2 n r`` per alpha, ``r = min(n, p)``), ``2 A n_val |G|`` per split
      (``|G| = 2 n_val``: the validation and the test run) and the test predictions.
    """
    n_val = n_scans / max(n_folds, 1)
    n_train = n_scans - n_val
    splits = n_folds * (n_folds - 1)
    if form is None:
        form = shape_form(n_train, n_features)
    if form == "dual":
        rank = min(n_scans, n_features)
        products = n_voxels * (2 * n_scans * rank * (2 + n_alphas) + splits * n_alphas * 2 * n_val * 2 * n_val
                               + n_folds * 2 * 3 * n_val * rank)
        decompositions = (2 * n_scans ** 2 * n_features + 10 * n_scans ** 3
                          + n_alphas * (n_scans ** 2 * rank + splits * 6 * n_val ** 3))
        return products, decompositions
    products = n_folds * ((n_folds - 1) * 2 * n_alphas * n_val * n_features * n_voxels
                          + n_folds * 2 * n_features ** 2 * n_voxels + 2 * n_train * n_features * n_voxels)
    decompositions = n_folds * n_folds * (10 * n_features ** 3 + 2 * n_train * n_features ** 2)
    return products, decompositions


def ridge_flop(n_scans, n_features, n_voxels, n_folds, n_alphas, n_permutations=0, form=None):
    """Operations of one layer's ridge (:func:`ridge_products`), with ``n_permutations`` circular shifts."""
    return sum(ridge_products(n_scans, n_features, n_voxels, n_folds, n_alphas, form)) \
        + n_permutations * 2 * n_scans * n_voxels


def data_scaling_flop(settings, n_scans, n_folds, n_features, n_voxels, n_alphas):
    """Operations of ``--data-scaling`` (:class:`DataScaling`) for one model: per outer fold, size and draw, one
    fold of a nested ridge on the subset's scans and the held-out stimulus (0 without it)."""
    if settings is None or n_folds < 3:
        return 0.0
    per_stimulus = n_scans / n_folds
    flop = 0.0
    for size in settings.sizes_for(n_folds - 1):
        draws = settings.draws if size < n_folds - 1 else 1
        flop += draws * ridge_flop(per_stimulus * (size + 1), n_features, n_voxels, size + 1, n_alphas) / (size + 1)
    return n_folds * flop


def joint_flop(n_scans, widths, n_voxels, n_folds, n_alphas, settings):
    """Operations of one joint model's fits (:class:`~bids_encoding.features.joint.JointSettings`) for spaces of
    ``widths`` columns: banded ridge, one dual-form ridge of all the columns per candidate kernel weight (one
    candidate for a single space); stacking, each space's own ridge. With unique variance, the same again for the
    spaces without each space in turn (``k`` more fits)."""
    def solver(kept):
        if settings.solver == "stacking":
            return sum(ridge_flop(n_scans, width, n_voxels, n_folds, n_alphas) for width in kept)
        candidates = settings.n_iter if len(kept) > 1 else 1
        return candidates * sum(ridge_products(n_scans, sum(kept), n_voxels, n_folds, n_alphas, form="dual"))

    fits = [list(widths)] + ([list(widths[:i]) + list(widths[i + 1:]) for i in range(len(widths))]
                             if settings.unique else [])
    return sum(solver(kept) for kept in fits), len(fits)


def _neuron_seconds(config, info, n_layers, n_scans, n_folds, threads, spec):
    """Seconds of the neuron analysis of one model (0 without --neuron-patterns), from its measured rate."""
    if not config.neurons or spec.is_baseline:
        return 0.0
    n_neurons = n_layers * FFN_WIDTH * info.hidden_size
    return NEURON_THREAD_SECONDS * n_neurons * n_scans * config.neurons.n_patterns * (n_folds + 1) / threads


def _layer_seconds(n_voxels, n_scans, threads, device):
    """Seconds of one layer's work beyond the ridge's arithmetic (design, scores, p-values, maps), from the rate
    measured on the demo (CPU; on a GPU the same CPU-side work is assumed)."""
    return LAYER_THREAD_SECONDS_PER_VOXEL_SCAN * n_voxels * n_scans / (2 if device == "cuda" else threads)


def _joint_plans(config, extractor, shape, fitted_share, threads, device):
    """A :class:`ModelPlan` per joint model (``--joint-model``): its fits (:func:`joint_flop`); its spaces'
    features and own fits are the models' rows."""
    from bids_encoding.features import parse_model_spec
    from bids_encoding.features.joint import joint_specs

    n_scans, n_voxels, n_folds, delays = shape
    plans = []
    for spec in joint_specs(config.joint_models, config.joint, parse_model_spec):
        infos = [extractor.model_info(space) for space in spec.spaces]
        widths = [info.hidden_size * (1 if space.is_baseline else delays) for space, info in zip(spec.spaces, infos)]
        flop, n_fits = joint_flop(n_scans, widths, n_voxels, n_folds, len(config.alphas), config.joint)
        plans.append(ModelPlan(spec.label, sum(info.n_params for info in infos), 1, sum(widths), 0, 0.0,
                               fitted_share * flop, True,
                               layer_seconds=n_fits * _layer_seconds(n_voxels, n_scans, threads, device),
                               joint=True))
    return plans


def _hours(seconds):
    return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def plan_participant_level(config, selected):
    """The plan of a participant-level run, as text (``selected``: :func:`collect_runs`'s result)."""
    from bids_encoding.participant.selection import distinct_stimuli, feature_extractor, model_specs, stimulus_sequences

    threads = config.omp_nthreads or config.nprocs or 2
    device = "cuda" if str(config.device).startswith("cuda") else "cpu"
    rate = dict(GPU_RATE) if device == "cuda" else {key: value * threads for key, value in CPU_RATE_PER_THREAD.items()}
    extractor = feature_extractor(config)
    sequences = stimulus_sequences(selected, config)
    stimuli = distinct_stimuli(sequences.values())
    n_words = {key: len(stimulus.words) for key, stimulus in stimuli.items()}
    runs = next(iter(selected.values()))
    n_scans = max(sum(run.n_scans for run in runs) for runs in selected.values())
    n_folds = max(len(sequence.groups) for sequence in sequences.values())
    # a fixed test stimulus (--procedure antonello2023) fits one of the folds; a float64 ridge runs at half rate
    fitted_share = 1 / n_folds if config.test_stimulus and n_folds > 1 else 1.0
    if config.ridge_dtype == "float64":
        rate["ridge"] /= 2
    n_voxels, voxel_source = _voxels(runs, config)
    if surface_bold_runs(runs, config)[0] is not None:  # fitted beside the voxels (participant/surface.py)
        n_voxels += 2 * N_VERTICES
        voxel_source += f" + {2 * N_VERTICES} vertices of fMRIPrep's surface BOLD"
    delays = len(config.design.fir_delays) if config.design.kind == "lanczos-fir" else 1
    permutations = config.n_permutations if config.pvalue_method in ("circular", "blocks") else 0
    layer_permutations = permutations if config.pvalue_layers == "all" else 0
    models = []
    for spec in model_specs(config.models):
        info = extractor.model_info(spec)
        layers = (0,) if spec.is_baseline else tuple(resolve_layers(config.features.layers, info.n_layers))
        missing = [key for key, stimulus in stimuli.items() if not extractor.cached(spec, stimulus, layers)]
        if extractor.is_speech(spec):
            tokens = speech_positions(config.speech, sum(_seconds(stimuli[key]) for key in missing))
        else:
            tokens = (TOKENS_PER_WORD * passes_per_token(config.features, getattr(info, "max_tokens", None))
                      * sum(n_words[key] for key in missing))
        models.append(ModelPlan(spec.label, info.n_params, len(layers), info.hidden_size, len(stimuli) - len(missing),
                                0 if spec.is_baseline else 2 * info.n_params_no_head * tokens,
                                fitted_share * (len(layers) * ridge_flop(n_scans, info.hidden_size * delays, n_voxels,
                                                                         n_folds, len(config.alphas),
                                                                         layer_permutations)
                                                + ridge_flop(n_scans, info.hidden_size * delays, n_voxels, n_folds,
                                                             len(config.alphas), permutations)
                                                + data_scaling_flop(config.data_scaling, n_scans, n_folds,
                                                                    info.hidden_size * delays, n_voxels,
                                                                    len(config.alphas))),
                                spec.is_baseline,
                                0.0 if extractor.is_speech(spec) else
                                _neuron_seconds(config, info, len(layers), n_scans, n_folds, threads, spec),
                                len(layers) * _layer_seconds(n_voxels, n_scans, threads, device)))
    models += _joint_plans(config, extractor, (n_scans, n_voxels, n_folds, delays), fitted_share, threads, device)
    participants = sorted({subject for subject, _ in selected})
    itemsize = 2 if str(extractor.dtype) in ("bfloat16", "float16") else 4
    weights = max((m.n_params * itemsize for m in models if m.cached < len(stimuli) and not m.baseline), default=0)
    widest = max(m.hidden_size * (1 if m.joint else delays) for m in models)
    data = 2 * 4 * n_scans * n_voxels  # the cleaned BOLD and one copy, float32
    fixed, per_voxel = working_memory(n_scans, widest, n_scans / n_folds, n_scans / n_folds, len(config.alphas))
    ridge = config.mem or fixed + per_voxel * min(n_voxels, Compute(device=device).max_block)
    design = 8 * n_scans * widest * 3
    job_memory = PYTHON_OVERHEAD + data + design + ridge + (weights if device == "cpu" else 0)
    fit_seconds = sum(m.fit_seconds(rate["ridge"]) for m in models)
    feature_seconds = sum(m.feature_flop for m in models) / rate["features"]
    lines = [
        f"plan: {len(participants)} participant(s), {len(selected)} participant-task(s), up to {n_scans} scans "
        f"and {len(stimuli)} distinct stimuli ({sum(n_words.values())} words); {n_voxels} voxels "
        f"({voxel_source}); {n_folds} outer folds"
        f"{' (one fitted: a fixed test stimulus)' if fitted_share < 1 else ''}; device {device}, {threads} thread(s)",
        f"{'model':<24} {'parameters':>12} {'layers':>6} {'hidden':>6} {'cached':>7} {'features':>10} "
        f"{'fit/participant':>15}",
    ]
    for m in models:
        cached, feature_time = (("-", "-") if m.baseline else
                                (f"{m.cached:>3}/{len(stimuli):<3}", _hours(m.feature_flop / rate["features"])))
        lines.append(f"{m.label[:24]:<24} {m.n_params:>12,} {m.n_layers:>6} {m.hidden_size:>6} {cached:>7} "
                     f"{feature_time:>10} {_hours(m.fit_seconds(rate['ridge'])):>15}")
    gib = 2 ** 30
    lines += [
        f"features, once for all participants: {_hours(feature_seconds)} (model weights {weights / gib:.1f} GiB)",
        f"fits: {_hours(fit_seconds)} per participant, {_hours(fit_seconds * len(participants))} in all (the ridge's "
        "arithmetic at measured rates, and each layer's design, p-values and maps at the rate measured on the "
        "demo; left out: start-up, loading the models, reading, resampling and cleaning the BOLD)",
        f"memory of one participant job: {job_memory / gib:.1f} GiB (data {data / gib:.1f}, design "
        f"{design / gib:.1f}, ridge working memory {ridge / gib:.1f}{' (--mem)' if config.mem else ''}, model weights "
        f"{(weights if device == 'cpu' else 0) / gib:.1f}, Python {PYTHON_OVERHEAD / gib:.1f})",
        f"Slurm, one participant per task: --array=1-{len(participants)} --cpus-per-task={threads} "
        f"--mem={math.ceil(1.2 * job_memory / gib)}G (and bids_encoding --mem {math.ceil(ridge / 2 ** 20)}MB) "
        f"--time={_hours(SLACK_SECONDS + SLACK_FACTOR * fit_seconds)}"
        + ("" if feature_seconds == 0 else
           f"; features first (--features-only): --time={_hours(SLACK_SECONDS + SLACK_FACTOR * feature_seconds)}"),
        "rates: measured on 2 CPU cores (benchmarks/results), scaled by threads; GPU rates assumed (docs/hpc.md)",
    ]
    return "\n".join(lines)
