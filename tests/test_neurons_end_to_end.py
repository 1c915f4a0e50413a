"""Neurons to brain networks, end to end: known groups of a tiny model's neurons drive known networks of a
generated atlas; the participant level recovers which group drives which network, through the real
TemplateFlow API (a temporary TEMPLATEFLOW_HOME), and matches nothing in a null dataset; the group level
summarises it."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import bidsignore_patterns_used, templateflow_home, validator_errors
from sklearn.metrics import adjusted_rand_score
from test_neurons import _schaefer_image

from bids_encoding.cli import main
from bids_encoding.synthetic import generate_dataset
from bids_encoding.synthetic.neuron_model import build_neuron_model

OPTIONS = ["--neuron-patterns", "8", "--neuron-permutations", "200", "--pvalue-method", "none"]


def _dataset(root, amplitude, n_participants, n_runs):
    groups = build_neuron_model(root / "model")
    generate_dataset(root, str(root / "model"), n_participants=n_participants, n_runs=n_runs, layout="demo",
                     neuron_groups=groups, network_amplitude=amplitude)
    return root / "bids", root / "ground_truth"


def _files(output_dir, suffix, extension=".tsv"):
    return sorted(output_dir.glob(f"sub-*/func/*_desc-neurons_{suffix}{extension}"))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Two participants; the generated atlas written as TemplateFlow's Schaefer 7-network image."""
    root = tmp_path_factory.mktemp("neurons")
    bids, truth = _dataset(root, 1.0, 2, 4)
    with pytest.MonkeyPatch.context() as monkeypatch:
        home = templateflow_home(root, monkeypatch)
        atlas = nib.load(truth / "networks_dseg.nii.gz")
        names = pd.read_csv(truth / "networks_dseg.tsv", sep="\t").set_index("index")["name"].to_dict()
        labels = np.vectorize(lambda value: names.get(int(value), ""), otypes=[object])(np.asarray(atlas.dataobj))
        _schaefer_image(home, "7Networks", labels, atlas.affine)
        output_dir = root / "out"
        code = main([str(bids), str(output_dir), "participant", "--models", str(root / "model"),
                     "--work-dir", str(root / "work"), *OPTIONS])
    return code, output_dir, truth, bids, root


def test_planted_neuron_groups_are_traced_to_their_networks(planted, tmp_path):
    code, output_dir, truth, _, _ = planted
    assert code == 0
    assert not validator_errors(output_dir)
    used = bidsignore_patterns_used(output_dir, tmp_path)
    assert used is None or "*_desc-neurons_*" in used
    planted_networks = pd.read_csv(truth / "neuron_networks.tsv", sep="\t")
    assignments = _files(output_dir, "assignments")
    assert len(assignments) == 2
    for path in assignments:
        found = pd.read_csv(path, sep="\t", keep_default_na=False)
        assert (found["layer"] == 1).all() and len(found) == len(planted_networks)
        assert adjusted_rand_score(planted_networks["network"], found["network"]) >= 0.8
    for path in _files(output_dir, "networks"):
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["Atlas"]["Source"] == "TemplateFlow" and sidecar["Atlas"]["Template"] == "MNI152NLin2009cAsym"
        assert sidecar["Measures"]["fraction_matched"] >= 0.75
        assert sidecar["NeuronPatterns"]["NPatterns"] == 8 and "held-out runs" in sidecar["NeuronPatterns"][
            "PatternsScoredOn"]
    weights = nib.load(_files(output_dir, "stat-weight_statmap", ".nii.gz")[0])
    series = pd.read_csv(_files(output_dir, "timeseries")[0], sep="\t")
    scans = json.loads(_files(output_dir, "timeseries", ".json")[0].read_text())["ScansPerRun"]
    assert weights.shape[3] == 8 and series.shape == (sum(scans), 8) and len(scans) == 4
    r_map = np.asarray(nib.load(_files(output_dir, "stat-r_statmap", ".nii.gz")[0]).dataobj)
    networks = np.asarray(nib.load(truth / "networks_dseg.nii.gz").dataobj) > 0
    assert r_map[networks].mean() > 0.3 > r_map[~networks & (r_map != 0)].mean() + 0.2  # held-out r


def test_group_level_summarises_the_neuron_measures(planted):
    _, output_dir, _, bids, root = planted
    assert main([str(bids), str(output_dir), "group", "--work-dir", str(root / "work")]) == 0
    group = output_dir / "group"
    models = pd.read_csv(next(group.glob("*_neuronmodels.tsv")), sep="\t")
    assert models.loc[0, "consistency"] >= 0.9 and models.loc[0, "n_participants"] == 2
    layers = pd.read_csv(next(group.glob("*_neuronlayers.tsv")), sep="\t").set_index("layer")
    assert set(layers.columns) == {"Vis", "SomMot", "DorsAttn", "Default"}
    assert layers.loc[1].sum() == pytest.approx(128, abs=8)
    assert next((group / "figures").glob("*_desc-neuronnetworks_plot.svg")).stat().st_size > 0


def test_null_dataset_matches_no_network_beyond_the_fdr_rate(tmp_path):
    bids, truth = _dataset(tmp_path, 0.0, 1, 3)
    output_dir = tmp_path / "out"
    code = main([str(bids), str(output_dir), "participant", "--models", str(tmp_path / "model"), "--work-dir",
                 str(tmp_path / "work"), *OPTIONS, "--network-atlas", str(truth / "networks_dseg.nii.gz")])
    assert code == 0
    matches = pd.read_csv(_files(output_dir, "networks")[0], sep="\t")
    assert len(matches) == 8 and matches["matched"].sum() <= 1
    sidecar = json.loads(_files(output_dir, "networks", ".json")[0].read_text())
    assert sidecar["Atlas"]["Source"] == "file"


def test_a_network_atlas_the_space_cannot_have_stops_before_any_fit(small_dataset, tmp_path, capsys):
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", "--models", "wordrate",
                 "--neuron-patterns", "8"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 64 and "TemplateFlow template space" in error[-1] and "--network-atlas" in error[-1]
    assert not list((tmp_path / "out").glob("sub-*"))
