"""Summary measures of one model's neurons-to-networks analysis (Sun et al.'s comparisons across models)."""

from itertools import combinations

import numpy as np
import pandas as pd


def neuron_networks(assignment, matches):
    """Each neuron's network: that of its pattern when the pattern is matched, else None.

    ``assignment``: each neuron's pattern (-1: none); ``matches``: :func:`match_networks`'s table."""
    network = {int(row.pattern): row.network for row in matches.itertuples() if row.matched}
    return np.array([network.get(int(pattern)) for pattern in assignment], dtype=object)


def diversity(assignment, n_patterns):
    """Entropy of the neurons' distribution over patterns, divided by its maximum (log of n_patterns): 0 when
    every neuron follows one pattern, 1 when they spread evenly."""
    counts = np.bincount(np.asarray(assignment)[np.asarray(assignment) >= 0], minlength=n_patterns)
    share = counts[counts > 0] / counts.sum()
    return float(-(share * np.log(share)).sum() / np.log(n_patterns))


def neurons_per_network(layers, networks):
    """Number of neurons of each layer (rows) whose pattern maps to each network (columns)."""
    kept = np.array([network is not None for network in networks])
    return pd.crosstab(pd.Series(np.asarray(layers)[kept], name="layer"),
                       pd.Series(np.asarray(networks)[kept], name="network"))


def consistency(networks_by_participant):
    """Agreement of the neuron-to-network assignments across participants (same model, same neurons): the
    mean over pairs of participants of the fraction of neurons, among those both assign to a network, that
    they assign to the same one. NaN with fewer than two participants."""
    pairs = []
    for first, second in combinations(networks_by_participant, 2):
        first, second = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
        both = np.array([a is not None and b is not None for a, b in zip(first, second)])
        if both.any():
            pairs.append(float(np.mean(first[both] == second[both])))
    return float(np.mean(pairs)) if pairs else float("nan")


def model_measures(matches, assignment, n_patterns):
    """The per-participant, per-model measures: fraction of patterns matched, diversity, neurons matched."""
    networks = neuron_networks(assignment, matches)
    return {"fraction_matched": float(matches["matched"].mean()), "diversity": diversity(assignment, n_patterns),
            "fraction_neurons_matched": float(np.mean([network is not None for network in networks]))}
