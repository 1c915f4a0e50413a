"""The feature cache: per-layer arrays, verified reads, one computation across processes."""

import multiprocessing

import numpy as np

from bids_encoding.features import FeatureCache, FeatureSettings
from bids_encoding.features.engine import FeatureExtractor
from bids_encoding.features.models import parse_model_spec
from bids_encoding.stimuli import Stimulus
from bids_encoding.synthetic.story import STORY


def fake_compute(calls):
    def compute(layers):
        calls.append(list(layers))
        return {layer: np.full((3, 4), layer, dtype=np.float32) for layer in layers}, {"n_words": 3}
    return compute


def test_layers_are_added_and_reused(tmp_path):
    cache, calls = FeatureCache(tmp_path), []
    record = {"stimulus": "abc", "model_label": "m"}
    arrays, info, computed = cache.get_or_compute(record, [0, 2], fake_compute(calls))
    assert computed and calls == [[0, 2]] and info["layers"] == [0, 2]
    assert isinstance(arrays[2], np.memmap) and (arrays[2] == 2).all()
    arrays, info, computed = cache.get_or_compute(record, [0, 1, 2], fake_compute(calls))
    assert computed and calls[-1] == [1] and info["layers"] == [0, 1, 2]
    arrays, _, computed = cache.get_or_compute(record, [1, 2], fake_compute(calls))
    assert not computed and len(calls) == 2
    assert cache.hits == 1 and cache.misses == 2


def test_damaged_arrays_are_computed_again(tmp_path):
    cache, calls = FeatureCache(tmp_path), []
    record = {"stimulus": "abc", "model_label": "m"}
    cache.get_or_compute(record, [0, 1], fake_compute(calls))
    path = cache.entry(record) / "layer-001.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    arrays, _, computed = cache.get_or_compute(record, [0, 1], fake_compute(calls))
    assert computed and calls[-1] == [1]
    assert (arrays[1] == 1).all()


def test_changed_settings_are_a_new_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    assert cache.entry({"model_label": "m", "features": {"pooling": "last"}}) != \
        cache.entry({"model_label": "m", "features": {"pooling": "mean"}})


def _extract_in_process(model_dir, cache_dir, queue):
    extractor = FeatureExtractor(cache_dir, FeatureSettings(window=32, context=16), progress=False)
    stimulus = Stimulus("story", tuple(STORY.split()[:300]))
    features, _ = extractor.features(parse_model_spec(model_dir), [stimulus])
    queue.put((extractor.cache.misses, {k: np.array(v) for k, v in features["story"].items()}))


def test_two_processes_compute_once(tiny_model, tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_extract_in_process, args=(str(tiny_model), str(tmp_path), queue))
                 for _ in range(2)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(misses for misses, _ in results) == [0, 1]
    first, second = results[0][1], results[1][1]
    assert sorted(first) == [0, 1, 2]
    for layer in first:
        np.testing.assert_array_equal(first[layer], second[layer])


def test_ffn_neurons_are_cached_beside_the_features(tiny_model, tmp_path):
    spec = parse_model_spec(str(tiny_model))
    stimulus = Stimulus("story", tuple(STORY.split()[:40]))
    plain = FeatureExtractor(tmp_path, progress=False)
    plain.features(spec, [stimulus])
    with_neurons = FeatureExtractor(tmp_path, progress=False, ffn_neurons=True)
    assert with_neurons.neurons(spec, "story", [0, 1, 2]) is None
    _, info = with_neurons.features(spec, [stimulus])  # computes the neurons although features are cached
    assert info.ffn_module == "mlp.c_proj"
    neurons = with_neurons.neurons(spec, "story", info.layers)
    assert sorted(neurons) == [1, 2] and neurons[1].shape == (40, 128)
