"""FitRecord: the one description of a fit that the sidecar, the rerun fingerprint and the methods text come from."""

import pytest

from bids_encoding.cli.parser import config_from_args, parse_args
from bids_encoding.features import parse_model_spec
from bids_encoding.participant import FitRecord, build_ridge, collect_runs, stimulus_sequences
from bids_encoding.participant.record import FINGERPRINT_IN_SIDECAR


def _record(small_dataset, tiny_model, tmp_path, *options):
    config = config_from_args(parse_args([str(small_dataset), str(tmp_path / "out"), "participant", "--models",
                                          str(tiny_model), "--work-dir", str(tmp_path / "work"), *options]))
    selected = collect_runs(config)
    (key, runs), = selected.items()
    sequence = stimulus_sequences(selected, config)[key]
    return FitRecord.of(config, parse_model_spec(str(tiny_model)), runs, sequence, build_ridge(config),
                        [{"stimulus": stimulus.cache_key} for stimulus in sequence.stimuli])


@pytest.mark.parametrize("options", [(), ("--neuron-patterns", "4", "--pvalue-method", "none"),
                                     ("--procedure", "antonello2023")])
def test_every_fingerprinted_field_is_written_in_the_sidecar(small_dataset, tiny_model, tmp_path, options):
    """What a rerun compares is what the maps record: each field of the fingerprint that has a value is in the
    sidecar (the neurons settings were hashed but not written)."""
    record = _record(small_dataset, tiny_model, tmp_path, *options)
    sidecar = record.sidecar()
    hashed = {key: value for key, value in record._hashed().items() if value is not None}
    missing = [key for key in hashed if FINGERPRINT_IN_SIDECAR.get(key, key) not in sidecar]
    assert not missing
    if "--neuron-patterns" in options:
        assert sidecar["Neurons"]["NPatterns"] == 4 and sidecar["Neurons"] == hashed["Neurons"]
    for key in ("Design", "Cleaning", "Confounds", "Ridge", "Significance"):
        assert sidecar[key] == record._hashed()[key]  # the same values, not two descriptions of them


@pytest.mark.parametrize("option", [("--alphas", "1", "10"), ("--trim-scans", "3", "3"), ("--high-pass", "0.02"),
                                    ("--pvalue-method", "none"), ("--inner-cv", "chunks")])
def test_a_changed_setting_changes_the_fingerprint_and_the_sidecar(small_dataset, tiny_model, tmp_path, option):
    base = _record(small_dataset, tiny_model, tmp_path)
    changed = _record(small_dataset, tiny_model, tmp_path, *option)
    assert changed.fingerprint() != base.fingerprint()
    assert changed.sidecar() != base.sidecar()
    assert _record(small_dataset, tiny_model, tmp_path).fingerprint() == base.fingerprint()


def test_the_methods_come_from_the_sidecar(small_dataset, tiny_model, tmp_path):
    record = _record(small_dataset, tiny_model, tmp_path, "--procedure", "antonello2023")
    methods, sidecar = record.methods(), record.sidecar()
    assert methods and all(methods[key] == sidecar.get(key) for key in methods)
    assert methods["Procedure"]["Name"] == "antonello2023"
    assert methods["Ridge"]["TestRuns"] == sidecar["Ridge"]["TestRuns"]  # the fixed test stimulus, in both
