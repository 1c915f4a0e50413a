"""Sidecar contents of the participant maps: the record of everything that was computed."""

from pathlib import Path

from bids_encoding.derivatives.staging import RAW, STANDARD_SPACES
from bids_encoding.ridge.cv import ALPHA_SCORE_NAMES
from bids_encoding.ridge.kernels import SOLVERS
from bids_encoding.ridge.significance import PREWHITENING_ORDER

FORM_WORDING = {
    "auto": "primal (an eigendecomposition of XᵀX per split) when the features are fewer than half the training "
            "scans, else dual (one eigendecomposition of the kernel X Xᵀ of all scans; each split's held-out "
            "predictions by deleting its held-out scans from that fit): the same alphas and predictions; FormUsed "
            "says which one ran",
    "primal": "primal (an eigendecomposition of XᵀX per split)",
    "dual": "dual (one eigendecomposition of the kernel X Xᵀ of all scans; each split's held-out predictions by "
            "deleting its held-out scans from that fit)",
}


def ridge_record(ridge):
    """What the sidecars say of a :class:`~bids_encoding.ridge.NestedRidgeCV`'s settings."""
    compute = ridge.compute
    return {"Alphas": list(ridge.alphas),
            "AlphaChoice": "per voxel" if ridge.alpha_per_voxel else "shared by the voxels of each participant",
            "AlphaScore": ALPHA_SCORE_NAMES[ridge.alpha_score],
            "OuterCV": "leave-one-stimulus-out (repeated runs of a stimulus held out together)",
            "InnerCV": ridge.inner_cv.record(), "Score": "Pearson r on the held-out stimulus, mean over folds",
            "Intercept": False, "Solver": SOLVERS[ridge.solver](ridge.alphas).record()["Solver"],
            "Form": FORM_WORDING[compute.form],
            **({"Rank": ridge.rank, "RankMethod": "approximate: ridge on the best rank-k approximation of the "
                "features, from a randomized range finder (torch.svd_lowrank, 4 power iterations, seed 0)"}
               if ridge.rank is not None else {}),
            "Device": str(compute.device),
            "DType": str(compute.dtype).replace("torch.", ""), "TF32": bool(compute.tf32)}


def cv_scheme_record(ridge, n_stimuli):
    """The outer and inner cross-validation of ``ridge`` with this many distinct stimuli.

    Three or more: leave one stimulus out, the inner scheme inside. Two: leave one stimulus out, alphas (and
    layers) chosen on contiguous chunks of the training stimulus (or by the inner scheme itself, where it splits
    one stimulus: ``huth-bootstrap``). One: contiguous chunks of the stimulus are the outer folds, with a gap of
    dropped scans after each border, and leave one chunk out inside.
    """
    if n_stimuli >= 3:
        return {"OuterCV": "leave-one-stimulus-out (repeated runs of a stimulus held out together)",
                "InnerCV": ridge.inner_cv.record()}
    if n_stimuli == 2:
        inner_cv = ridge.inner_cv_for(n_stimuli)
        return {"OuterCV": "leave-one-stimulus-out (2 stimuli)", "InnerCV": inner_cv.record(),
                **({} if inner_cv is ridge.inner_cv else {
                    "Fallback": "two stimuli: alphas and layers chosen on contiguous chunks of the training "
                                "stimulus"})}
    return {"OuterCV": f"{ridge.outer_chunks} contiguous chunks of the one stimulus, {ridge.chunk_gap} scans "
                       "dropped after each border (repeats of the stimulus chunked alike, held out together)",
            "InnerCV": {"Scheme": "loro", "Unit": "chunk"},
            "Fallback": "one stimulus: chunks of it are the cross-validation folds",
            "OuterChunks": ridge.outer_chunks, "ChunkGap": ridge.chunk_gap}


def test_stimulus_record(runs, sequence, rule):
    """With a fixed test stimulus (a procedure's), the ridge's ``OuterCV`` and ``TestRuns``."""
    fold = sequence.test_fold(rule)
    if fold is None:
        return {}
    return {"OuterCV": "one fold: the stimulus presented most often held out (the last of equals; its "
                       "presentations averaged), trained on all others",
            "TestRuns": [runs[run].bold_path.name for run in sequence.groups[fold]]}


def run_record(run, stimulus_key, config):
    """The sidecars' record of one run: BOLD, TR, scans, words, stimulus, confounds, where the words came from,
    and what was found in it."""
    return {"Bold": source_path(run.bold_path, config.bids_dir), "RepetitionTime": run.repetition_time,
            "RepetitionTimeFrom": run.repetition_time_source, "NumberOfScans": run.n_scans,
            **_word_counts(run.words),
            "Stimulus": stimulus_key, "Task": run.task,
            **({"Confounds": run.confounds.record(config.design.trim_start, run.n_scans - config.design.trim_end)}
               if run.confounds is not None else {}),
            **({"Words": run.word_source} if run.word_source else {}),
            **({"Notes": list(run.notes)} if run.notes else {})}


def _word_counts(words):
    if words is None or words.empty:
        return {"NumberOfWords": 0}
    return {"NumberOfWords": int(len(words)), "FirstWordOnset": round(float(words["onset"].min()), 3),
            "LastWordOffset": round(float((words["onset"] + words["duration"]).max()), 3)}


def significance_record(config):
    if config.pvalue_method == "none":
        return None
    record = {"Method": config.pvalue_method, "Statistic": "fold-mean Pearson r", "OneSided": True,
              "Correction": "Benjamini-Hochberg FDR (stat-q)",
              "Layers": "every layer and the best" if config.pvalue_layers == "all" else "the best layer only"}
    if config.pvalue_method == "prewhitening":
        return {**record, "AutoregressiveOrder": PREWHITENING_ORDER, "FoldCombination": "Stouffer",
                "Description": "r of prediction and data after both are filtered by the AR model of the held-out "
                               "data (Yule-Walker, per voxel and fold)"}
    return {**record, "NumberOfPermutations": config.n_permutations, "Seed": 0}


def source_path(path, bids_dir):
    """A path relative to the dataset, or absolute when it lies outside (a words folder)."""
    path = Path(path)
    return str(path.relative_to(bids_dir)) if path.is_relative_to(bids_dir) else str(path)


def bids_uri(path, bids_dir):
    """A BIDS URI of an input file (``bids:raw:<path in the dataset>``; ``raw`` is the input's name in
    ``DatasetLinks``), or a ``file://`` URI when it lies outside the dataset."""
    path = Path(path)
    return f"bids:{RAW}:{path.relative_to(bids_dir)}" if path.is_relative_to(bids_dir) else path.resolve().as_uri()


def mask_record(kind, sources, space, reference):
    """The BIDS fields of a mask's sidecar: ``Type`` (``Brain`` or ``ROI``), ``Sources`` (URIs) and, in a space
    that is not a BIDS standard template (``orig``, a custom template), ``SpatialReference``: the URI of an image on
    the same grid."""
    record = {"Type": kind, "Sources": list(sources)}
    if space not in STANDARD_SPACES:
        record["SpatialReference"] = reference
    return record
