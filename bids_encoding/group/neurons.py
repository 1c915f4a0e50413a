"""The group level of the neurons-to-networks analysis: per model, its measures over participants, how they
change with the model's size, which networks its patterns match and where its neurons' networks lie by layer.
"""

import json

import numpy as np
import pandas as pd

from bids_encoding.derivatives.names import find
from bids_encoding.neurons.measures import consistency, neurons_per_network

MEASURES = ("fraction_matched", "diversity", "fraction_neurons_matched")


def _assignments(path):
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            table = pd.DataFrame({key: data[key] for key in data.files})
    else:
        table = pd.read_csv(path, sep="\t", keep_default_na=False)
    table["network"] = table["network"].astype(str).replace({"n/a": None})
    return table


def collect_neurons(members):
    """``{model: {participant: (networks table, measures, assignments path)}}`` for every participant with
    neuron outputs."""
    found = {}
    for member in members:
        folder = member.mask_path.parent
        files = find(folder, sub=member.subject, task=member.task, desc="neurons")
        assignments_of = {name.model: path for name, path in files.items()
                          if name.suffix == "assignments" and name.extension in (".tsv", ".npz")}
        for name, path in files.items():
            if (name.suffix, name.extension) != ("networks", ".tsv"):
                continue
            sidecar = json.loads(path.with_name(str(name.sidecar)).read_text())
            assignments = assignments_of.get(name.model)
            if assignments is not None:
                found.setdefault(name.model, {})[f"sub-{member.subject}"] = (
                    pd.read_csv(path, sep="\t"), sidecar.get("Measures", {}), assignments)
    return found


def neuron_tables(members, models):
    """The group's neuron tables.

    Returns
    -------
    measures : pandas.DataFrame
        One row per participant and model: the participant's measures, the model's size.
    summary : pandas.DataFrame
        One row per model: mean measures over participants, consistency across participants, size.
    layers : dict
        ``{model: DataFrame}``: mean number of neurons per layer (rows) and network (columns) over participants.
    patterns : dict
        ``{model: DataFrame}``: per pattern (rows) and network (columns), the fraction of participants whose
        pattern matched that network (patterns are shared by participants who heard the same stimuli).
    """
    found = collect_neurons(members)
    rows, summary, layers, patterns = [], [], {}, {}
    for model, participants in sorted(found.items()):
        networks_by_participant, counts, matched = [], [], []
        for participant, (networks, measures, path) in participants.items():
            rows.append({"participant": participant, "model": model, **{m: measures.get(m) for m in MEASURES}})
            table = _assignments(path)
            networks_by_participant.append(table["network"].to_numpy(dtype=object))
            counts.append(neurons_per_network(table["layer"], table["network"].to_numpy(dtype=object)))
            matched.append(pd.crosstab(networks["pattern"], networks["network"].where(networks["matched"]))
                           .reindex(sorted(networks["pattern"]), fill_value=0))
        layers[model] = pd.concat(counts).groupby(level=0).sum().div(len(counts)).fillna(0) if counts else None
        patterns[model] = pd.concat(matched).groupby(level=0).sum().div(len(matched)).fillna(0)
        summary.append({"model": model, "n_participants": len(participants),
                        **{m: float(np.nanmean([p[1].get(m, np.nan) for p in participants.values()]))
                           for m in MEASURES},
                        "consistency": consistency(networks_by_participant)})
    if not rows:
        return None, None, {}, {}
    sizes = models[["model", "n_params", "n_layers", "hidden_size", "family", "baseline"]]
    measures = pd.DataFrame(rows).merge(sizes, on="model")
    measures["log10_params"] = np.log10(measures["n_params"].where(measures["n_params"] > 0))
    summary = pd.DataFrame(summary).merge(sizes, on="model")
    summary["log10_params"] = np.log10(summary["n_params"].where(summary["n_params"] > 0))
    return measures, summary, layers, patterns
