"""Neurons to brain networks: neuron time courses in blocks, their patterns, each neuron's sub-group."""

import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from bids_encoding.design import Cleaning, DesignSettings
from bids_encoding.neurons import NeuronPatterns, NeuronTimecourses, assignment, one_delay
from bids_encoding.synthetic import story_runs

TR = 2.0


def planted_neurons(n_groups=4, per_group=60, noise=0.5, seed=0, n_runs=3, signs=(-1, 1), skewed=False):
    """Per run, one layer of neurons whose word activations follow one of ``n_groups`` word signals, each
    with a gain of either sign (``signs``); the word signals are Gaussian, or ``skewed`` as real neurons'
    activations are (squared rectified Gaussians)."""
    rng = np.random.default_rng(seed)
    runs = story_runs(n_runs)
    groups = np.repeat(np.arange(n_groups), per_group)
    neurons, matrices = [], []
    design = DesignSettings(trim_start=2, trim_end=2)
    gains = rng.uniform(0.5, 2.0, len(groups)) * rng.choice(signs, len(groups))
    for words in runs:
        signals = rng.standard_normal((len(words), n_groups))
        if skewed:
            signals = np.maximum(signals, 0) ** 2
        activations = signals[:, groups] * gains + noise * rng.standard_normal((len(words), len(groups)))
        neurons.append({3: activations.astype(np.float32)})
        n_scans = int(np.ceil((words["onset"].iloc[-1] + 12) / TR))
        matrices.append(design.word_matrix(words, n_scans, TR))
    return NeuronTimecourses(neurons, matrices, [TR] * n_runs, design, Cleaning()), groups


def test_time_courses_do_not_depend_on_the_block_size_and_keep_to_their_memory_bound():
    courses, groups = planted_neurons()
    whole = np.concatenate([block for _, block in NeuronTimecourses(
        courses.neurons, courses.matrices, courses.repetition_times, courses.design, courses.cleaning,
        block=10_000).blocks(3)])
    courses.block = 16
    tracemalloc.start()
    pieces = [block for _, block in courses.blocks(3)]
    peak = tracemalloc.get_traced_memory()[1] - sum(piece.nbytes for piece in pieces)
    tracemalloc.stop()
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)
    assert whole.shape == (len(groups), courses.n_scans)
    assert peak <= courses.memory_bound(), (peak, courses.memory_bound())
    same = np.corrcoef(whole[:5])[0, 1:]
    assert np.abs(same).min() > 0.5  # neurons of one group follow one time course, up to their sign


@pytest.mark.parametrize("signs, method, skewed", [((-1, 1), "dictionary", False), ((1,), "dictionary", False),
                                                   ((-1, 1), "ica", True)])
def test_planted_neuron_groups_are_recovered(signs, method, skewed):
    courses, groups = planted_neurons(signs=signs, skewed=skewed)
    patterns = NeuronPatterns(n_patterns=4, method=method, random_state=0)
    patterns.fit(lambda: (block for _, block in courses.blocks(3)))
    assert patterns.patterns_.shape == (4, courses.n_scans)
    found = np.concatenate([assignment(patterns.transform(block)) for _, block in courses.blocks(3)])
    assert adjusted_rand_score(groups, found) >= 0.8


def test_lanczos_fir_is_collapsed_to_one_delay():
    design = DesignSettings(kind="lanczos-fir", fir_delays=(1, 2, 3, 4))
    assert one_delay(design).fir_delays == (3,) and one_delay(DesignSettings()).kind == "hrf"
    with pytest.raises(ValueError, match="unknown pattern method"):
        NeuronPatterns(method="pca")


def planted_atlas(n_voxels=2000, size=300, n_networks=4):
    labels = np.zeros(n_voxels, dtype=int)
    for k in range(n_networks):
        labels[k * size:(k + 1) * size] = k + 1
    return labels, {k + 1: f"Net{k + 1}" for k in range(n_networks)}


def test_pattern_maps_are_matched_to_the_networks_they_were_planted_in():
    from bids_encoding.neurons.networks import match_networks

    labels, names = planted_atlas()
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((4, len(labels))) * 1.5
    maps[0] += labels == 1
    maps[1] += labels == 3
    maps[3] += 0.6 * (labels == 2)  # pattern 2: noise only
    table = match_networks(maps, labels, names, n_permutations=500)
    assert list(table["matched"]) == [True, True, False, True]
    assert list(table.loc[table["matched"], "network"]) == ["Net1", "Net3", "Net2"]
    assert (table.loc[table["matched"], "dice"] > 0.2).all() and (table["p"] >= 1 / 501).all()


def test_null_maps_match_no_network_beyond_the_fdr_rate():
    from bids_encoding.neurons.networks import match_networks

    labels, names = planted_atlas()
    false = 0
    for seed in range(5):
        maps = np.random.default_rng(seed).standard_normal((40, len(labels)))
        false += match_networks(maps, labels, names, n_permutations=200, seed=seed)["matched"].sum()
    assert false <= 2  # BH at 0.05 under the full null: at most one seed of five with any match, expected


def test_summary_measures_on_known_assignments():
    import pandas as pd

    from bids_encoding.neurons.measures import (
        consistency,
        diversity,
        model_measures,
        neuron_networks,
        neurons_per_network,
    )

    matches = pd.DataFrame({"pattern": [0, 1, 2], "network": ["Language", "Visual", "Default"],
                            "matched": [True, True, False]})
    assignment = np.array([0, 0, 1, 2, -1, 1])
    networks = neuron_networks(assignment, matches)
    assert list(networks) == ["Language", "Language", "Visual", None, None, "Visual"]
    assert diversity([0, 0, 0, 0], 4) == 0 and diversity([0, 1, 2, 3], 4) == pytest.approx(1)
    table = neurons_per_network([1, 1, 2, 2, 2, 3], networks)
    assert table.loc[1, "Language"] == 2 and table.loc[2, "Visual"] == 1 and table.loc[3, "Visual"] == 1
    assert consistency([networks, networks]) == 1
    other = np.array(["Language", "Visual", "Visual", "Default", None, "Visual"], dtype=object)
    assert consistency([networks, other]) == pytest.approx(3 / 4)  # 4 neurons both assign; 3 agree
    assert np.isnan(consistency([networks]))
    measures = model_measures(matches, assignment, 3)
    assert measures["fraction_matched"] == pytest.approx(2 / 3)
    assert measures["fraction_neurons_matched"] == pytest.approx(4 / 6)


def test_pattern_regressors_give_the_planted_weight_maps():
    from sklearn.linear_model import Ridge

    from bids_encoding.neurons.encoding import fit_patterns
    from bids_encoding.ridge import NestedRidgeCV
    from bids_encoding.ridge.kernels import ridge_weights

    rng = np.random.default_rng(1)
    designs = [rng.standard_normal((120, 4)) for _ in range(4)]
    truth = rng.standard_normal((4, 30))
    truth[:, :5] = 0  # five voxels no pattern drives
    responses = [x @ truth + rng.standard_normal((120, 30)) for x in designs]
    fit = fit_patterns(NestedRidgeCV(np.logspace(-2, 4, 7)), designs, responses, [0, 1, 2, 3])
    assert fit.weights.shape == (4, 30)
    assert np.corrcoef(fit.weights[:, 5:].ravel(), truth[:, 5:].ravel())[0, 1] > 0.95
    assert fit.r[5:].mean() > 0.6 and abs(fit.r[:5].mean()) < 0.15
    x, y = np.concatenate(designs), np.concatenate(responses)
    reference = Ridge(alpha=fit.alpha[7], fit_intercept=False).fit(x, y[:, 7]).coef_
    np.testing.assert_allclose(ridge_weights(x, y, fit.alpha)[:, 7], reference, rtol=1e-6)


def test_patterns_learned_on_training_runs_extend_to_the_held_out_run(tmp_path):
    from bids_encoding.neurons.patterns import oriented, pattern_timecourses

    courses, groups = planted_neurons(signs=(1,), n_runs=3)
    store = courses.store(tmp_path / "courses.npy")
    assert store.array.shape == (len(groups), courses.n_scans) and list(store.layers[:2]) == [3, 3]
    training, held_out = store.scans_of([0, 1]), store.scans_of([2])
    patterns = NeuronPatterns(n_patterns=4, random_state=0).fit(lambda: store.blocks(training))
    series = pattern_timecourses(patterns, zip(store.blocks(training), store.blocks()))
    assert series.shape == (4, courses.n_scans)
    learned = np.corrcoef(series[:, training], patterns.patterns_)[:4, 4:]
    assert np.abs(np.diag(learned)).min() > 0.95  # on the learned scans: the patterns themselves
    codes = patterns.transform(np.asarray(store.array)[:, training])
    found = assignment(codes)
    whole = np.asarray(store.array)
    for pattern in range(4):  # on the held-out run: the time course of the neurons the pattern assigns
        group = whole[found == pattern][:, held_out].mean(axis=0)
        assert abs(np.corrcoef(series[pattern, held_out], group)[0, 1]) > 0.9
    upright, upright_codes, signs = oriented(patterns.patterns_, codes.copy())
    flipped, flipped_codes, flipped_signs = oriented(-patterns.patterns_, -codes)
    assert np.array_equal(flipped_signs, -signs) and np.allclose(flipped, upright)
    assert np.allclose(flipped_codes, upright_codes)
    assigned = assignment(upright_codes)
    assert all(upright_codes[assigned == k, k].sum() > 0 for k in range(4))  # each pattern's neurons follow it


def _schaefer_image(home, n_networks_name, values, affine):
    """Write a Schaefer2018 image into a temporary TemplateFlow home: each voxel labelled with the first parcel
    index (from TemplateFlow's own label table) of the network ``values`` names."""
    import nibabel as nib
    import pandas as pd

    stem = f"tpl-MNI152NLin2009cAsym_atlas-Schaefer2018_desc-400Parcels{n_networks_name}_dseg"
    table = pd.read_csv(home / f"{stem}.tsv", sep="\t")
    first = {}
    for index, name in zip(table["index"], table["name"]):
        first.setdefault(name.split("_")[2], int(index))
    data = np.vectorize(lambda name: first.get(name, 0))(values).astype(np.int16)
    nib.Nifti1Image(data, affine).to_filename(home / stem.replace("_atlas", "_res-02_atlas").join(["", ".nii.gz"]))
    return first


def test_network_atlases_through_templateflow_and_from_a_file(tmp_path, monkeypatch):
    import nibabel as nib
    import pandas as pd
    from conftest import templateflow_home

    from bids_encoding.errors import MissingInputError, UsageError
    from bids_encoding.neurons.atlas import check_atlas, network_atlas

    home = templateflow_home(tmp_path, monkeypatch)
    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    affine[:3, 3] = (-40, -40, -40)
    mask = nib.Nifti1Image(np.ones((10, 10, 10), dtype=np.uint8), affine)
    with pytest.raises(MissingInputError, match="prefetch it"):  # the skeleton's image is empty
        network_atlas("Schaefer7", "MNI152NLin2009cAsym", mask)
    names = np.full((10, 10, 10), "", dtype=object)
    names[:5], names[5:, :5] = "Vis", "Default"
    _schaefer_image(home, "7Networks", names, affine)
    atlas = network_atlas("Schaefer7", "MNI152NLin2009cAsym", mask)
    assert sorted(atlas.names.values()) == ["Default", "Vis"] and atlas.record["Source"] == "TemplateFlow"
    counts = {atlas.names[k]: int((atlas.labels == k).sum()) for k in atlas.names}
    assert counts == {"Vis": 500, "Default": 250} and (atlas.labels == 0).sum() == 250
    assert network_atlas("Schaefer7", "DemoMNI", mask).record["Template"] == "MNI152NLin2009cAsym"
    names17 = np.full((10, 10, 10), "VisCent", dtype=object)
    _schaefer_image(home, "17Networks", names17, affine)
    assert list(network_atlas("Schaefer17", "MNI152NLin2009cAsym", mask).names.values()) == ["VisCent"]
    with pytest.raises(UsageError, match="TemplateFlow template space"):
        check_atlas("Schaefer7", ["orig"])

    user = tmp_path / "lab_networks.nii.gz"
    nib.Nifti1Image((np.indices((10, 10, 10))[0] >= 5).astype(np.int16) * 2, affine).to_filename(user)
    with pytest.raises(MissingInputError, match="lab_networks.tsv"):
        check_atlas(str(user), ["orig"])
    pd.DataFrame({"index": [2], "name": ["Language"]}).to_csv(tmp_path / "lab_networks.tsv", sep="\t", index=False)
    atlas = network_atlas(str(user), "orig", mask)
    assert list(atlas.names.values()) == ["Language"] and (atlas.labels > 0).sum() == 500


def test_lasso_codes_equal_scikit_learns_on_correlated_atoms():
    from sklearn.decomposition import sparse_encode

    from bids_encoding.neurons.patterns import lasso_codes

    rng = np.random.default_rng(3)
    atoms = rng.standard_normal((16, 120)) + 1.5 * rng.standard_normal(120)  # a shared component: correlated
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    data = (rng.standard_normal((300, 16)) * (rng.random((300, 16)) < 0.2)) @ atoms
    data += 0.2 * rng.standard_normal(data.shape) / np.sqrt(120)
    reference = sparse_encode(data, atoms, algorithm="lasso_cd", alpha=0.05, max_iter=20000)
    codes = lasso_codes(data, atoms, 0.05, max_iter=20000, tol=1e-10)
    np.testing.assert_allclose(codes, reference, atol=1e-5)
    assert (codes != 0).mean() < 0.5  # sparse
