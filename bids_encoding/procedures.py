"""Procedure presets: every step as a seed paper's own code runs it (``--procedure``; docs/ridge.md "Procedures").

A preset fixes options (the values a user would otherwise give) and the steps no option reaches (cleaning
order, design z-scoring, the mask recipe, the resampling grid, the word windows). The app's own defaults
differ where docs/ridge.md says why; a preset exists so that a user can ask for the seed's numbers.
Light to import: the command line reads it.
"""

from dataclasses import dataclass, field

import numpy as np

DEFAULT = "default"

# resample_fmri_data.py: the 4 mm grid every run is resampled to (37 x 46 x 38 voxels)
BGP_GRID = (((4.0, 0.0, 0.0, -72.0), (0.0, 4.0, 0.0, -106.0), (0.0, 0.0, 4.0, -64.0), (0.0, 0.0, 0.0, 1.0)),
            (37, 46, 38))
BGP_CODE = "https://github.com/l-bg/llms_brain_lateralization"


@dataclass(frozen=True)
class Procedure:
    """A procedure preset.

    Attributes
    ----------
    name : str
        As ``--procedure`` takes it.
    reference : str or None
        The paper's key in the boilerplate's references.
    code : str or None
        The repository whose code the preset follows.
    options : dict
        ``{option dest: value}`` the preset fixes; giving another value is refused.
    cleaning : dict
        :class:`~bids_encoding.design.cleaning.Cleaning` fields of the participants' BOLD and design.
    average_cleaning : dict
        The same for the average participant, where it differs.
    features : dict
        :class:`~bids_encoding.features.settings.FeatureSettings` fields.
    design : dict
        :class:`~bids_encoding.design.settings.DesignSettings` fields no option reaches.
    test_stimulus : str or None
        ``most-presented``: one outer fold, the stimulus presented most often (the last of equals) held out
        (Antonello et al.'s test story); ``None``: leave one stimulus out.
    ridge_dtype : str
        The ridge's working precision (``float32``, the app's; ``float64``, numpy's, where the seed's alphas
        tie to float32 rounding).
    mask : str or None
        The mask recipe (:func:`bids_encoding.inputs.masks.participant_mask`); ``None``: the app's sources.
    steps : tuple of (str, str)
        Each step and where their code does it, for the sidecars and docs.
    """

    name: str
    reference: str | None = None
    code: str | None = None
    options: dict = field(default_factory=dict)
    cleaning: dict = field(default_factory=dict)
    average_cleaning: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    design: dict = field(default_factory=dict)
    test_stimulus: str | None = None
    ridge_dtype: str = "float32"
    mask: str | None = None
    steps: tuple = ()

    def record(self):
        """The sidecars' ``Procedure``."""
        if self.name == DEFAULT:
            return {"Name": DEFAULT, "Description": "bids_encoding's own defaults (docs/ridge.md)"}
        return {"Name": self.name, "Follows": self.code, "Reference": self.reference,
                "Steps": {step: where for step, where in self.steps}}


BGP_ALPHAS = tuple(float(a) for a in np.logspace(2, 7, 16))
ANTONELLO_CODE = "https://github.com/HuthLab/encoding-model-scaling-laws"
# Their ridge penalises alpha² (D = S / (S² + alpha²), ridge_utils/ridge.py:256): the app's alphas are their
# grid squared
ANTONELLO_GRID = tuple(float(a) for a in np.logspace(1, 4, 15))
ANTONELLO_ALPHAS = tuple(a ** 2 for a in ANTONELLO_GRID)

PROCEDURES = {
    DEFAULT: Procedure(DEFAULT),
    "bgp2024": Procedure(
        "bgp2024", reference="bonnasse2024", code=BGP_CODE,
        options={"alphas": list(BGP_ALPHAS), "alpha_choice": "shared", "alpha_score": "r", "inner_cv": "first",
                 "trim_scans": [10, 10], "high_pass": 1.0 / 128, "hrf_model": "glover", "design": "hrf",
                 "pooling": "mean", "confounds": [], "mask": None, "window_tokens": None, "context_tokens": None,
                 "right_context_tokens": None, "continuous_context": False},
        cleaning={"order": "whole-run", "design": "zscore", "ddof": 0, "smoothing_fwhm": 4.0, "grid": BGP_GRID},
        average_cleaning={"smoothing_fwhm": None},
        features={"step": 64},
        mask="bgp2024",
        steps=(
            ("Resampling", "every run to a 4 mm grid, 37 x 46 x 38 voxels (nilearn resample_img, continuous): "
                           "resample_fmri_data.py"),
            ("Mask", "nilearn compute_multi_epi_mask of every run (threshold 0.5; all participants' runs for the "
                     "average participant, the participant's own otherwise), intersected with its left-right "
                     "mirror: compute_mask.py, fit_individual_subject.py"),
            ("BOLD", "each whole run masked, detrended, high-passed at 1/128 Hz and z-scored (NiftiMasker; 4 mm "
                     "FWHM smoothing for single participants), then the first and last 10 scans trimmed and "
                     "z-scored again (population standard deviation): fit_individual_subject.py; the average "
                     "participant is the mean of the participants' whole cleaned runs, then trimmed and z-scored: "
                     "compute_average_subject_fmri.py, fit_average_subject.py"),
            ("Features", "the mean of the hidden states from the word's first token to the token before the next "
                         "word's, every layer; windows of the model's maximum length, each adding 64 tokens: "
                         "extract_llm_activations.py"),
            ("Design", "each feature convolved with the Glover HRF (nilearn compute_regressor, events at word onset "
                       "and duration, frame times at mid-volume, oversampling 50), trimmed 10 and 10 scans, "
                       "z-scored (population standard deviation): fit_average_subject.py "
                       "compute_regressor_from_activations"),
            ("Ridge", "no intercept, alphas logspace(2, 7, 16), one alpha for all voxels: the best mean validation r "
                      "on the first training run (runs_train[0]) after a fit on the other training runs, then a "
                      "refit on all training runs; leave one run out; Pearson r per voxel, mean over folds: "
                      "fit_average_subject.py"),
        )),
    "antonello2023": Procedure(
        "antonello2023", reference="antonello2023", code=ANTONELLO_CODE,
        options={"alphas": list(ANTONELLO_ALPHAS), "alpha_choice": "voxel", "alpha_score": "huth-r2",
                 "inner_cv": "huth-bootstrap", "bootstraps": 3, "chunk_length": 20, "held_out": 0.25,
                 "trim_scans": [10, 5], "high_pass": 0.0, "design": "lanczos-fir", "fir_delays": [1, 2, 3, 4],
                 "confounds": [], "pooling": "last"},
        cleaning={"order": "whole-run", "design": "zscore", "ddof": 0, "detrend": False, "savgol_window": 120.0},
        design={"delays_across_runs": True},
        test_stimulus="most-presented",
        ridge_dtype="float64",
        steps=(
            ("BOLD", "not in their code (their responses come preprocessed, trimmed and z-scored per story): as "
                     "LeBel et al. 2023 describe it, each whole run minus a Savitzky-Golay fit (order 2, 120 s), "
                     "then the first 10 and last 5 scans trimmed and z-scored per run (population standard "
                     "deviation)"),
            ("Features", "the hidden state of each word's last token (their windows of 256 to 512 preceding words "
                         "are the app's token windows here): ridge_utils/tokenization_helpers.py"),
            ("Design", "word features at the words' midpoints, Lanczos-resampled to mid-volume scan times (window "
                       "3, cutoff 1/TR, unnormalized; interpdata.py lanczosinterp2D), trimmed 10 and 5 scans, "
                       "z-scored per run (population standard deviation; npp.zs), stacked over the training runs "
                       "and delayed by 1-4 scans across them (util.py make_delayed; the test run alone)"),
            ("Ridge", "float64 as their numpy; no intercept; their alphas logspace(1, 4, 15), squared as their "
                      "solution uses them (S / (S² + alpha²)); per voxel, the best mean over 3 bootstraps of "
                      "sign(R) sqrt(|R|), "
                      "R = 1 - var(residual) / ((1 + var(y)) / 2), each holding out int(0.25 n / 20) chunks of 20 "
                      "consecutive training scans drawn by Python's random (seeded: theirs is not); refit on all "
                      "training scans: ridge.py bootstrap_ridge, ridge_corr, ridge"),
            ("Test", "one outer fold: the stimulus presented most often held out (their wheretheressmoke; its "
                     "presentations averaged); Pearson r per voxel (their use_corr=True line) and R²"),
        )),
}


def procedure(name):
    """The preset named ``name``."""
    if name not in PROCEDURES:
        raise ValueError(f"procedure must be one of {', '.join(PROCEDURES)}, not '{name}'")
    return PROCEDURES[name]
