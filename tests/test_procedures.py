"""``--procedure`` presets against re-implementations of the seeds' own code.

``bgp2024``: Bonnasse-Gahot & Pallier's https://github.com/l-bg/llms_brain_lateralization, re-implemented
below from its files as they are (``resample_fmri_data.py``, ``compute_mask.py``,
``compute_average_subject_fmri.py``, ``fit_average_subject.py``, ``fit_individual_subject.py``): nilearn's
calls as they make them, scikit-learn's ``Ridge``, their ``standardize``. Both run on one synthetic dataset
with the same word features (the app's extraction with the preset's settings), so only the procedure differs.
"""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import validator_errors

from bids_encoding.cli.entry import main
from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.procedures import BGP_GRID
from bids_encoding.synthetic.generator import generate_dataset

N_RUNS, T_R = 3, 2.0


def standardize(v, axis=0):  # llms_brain_lateralization.py
    return (v - np.mean(v, axis=axis, keepdims=True)) / np.std(v, axis=axis, keepdims=True)


def columnwise_corrcoef(a, b):
    """``[np.corrcoef(a[:, i], b[:, i])[0, 1] for i in ...]`` without the Python loop (checked against it)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


def compute_regressor_from_activations(activations, onsets, offsets, frame_times):  # fit_average_subject.py
    from nilearn.glm.first_level import compute_regressor

    durations = offsets - onsets
    nn_signals = []
    for amplitudes in activations.T:
        exp_condition = np.array((onsets, durations, amplitudes))
        signal, name = compute_regressor(exp_condition, "glover", frame_times)
        nn_signals.append(signal[:, 0])
    return np.array(nn_signals).T


def fit_runs(regressors_runs, fmri_runs, alphas=np.logspace(2, 7, 16)):
    """fit_average_subject.py's loop over test runs: per fold, the alpha and the test r of every voxel."""
    from sklearn.linear_model import Ridge

    n_runs = len(fmri_runs)
    corr_runs, chosen = [], []
    for run_test in range(n_runs):
        runs_train = np.setdiff1d(np.arange(n_runs), run_test)
        x_train = np.vstack([regressors_runs[run_train] for run_train in runs_train])
        x_test = regressors_runs[run_test]
        y_train = np.vstack([fmri_runs[run_train] for run_train in runs_train])
        y_test = fmri_runs[run_test]
        run_val = runs_train[0]
        runs_train_val = np.setdiff1d(runs_train, run_val)
        x_train_val = np.vstack([regressors_runs[r] for r in runs_train_val])
        x_val = regressors_runs[run_val]
        y_train_val = np.vstack([fmri_runs[r] for r in runs_train_val])
        y_val = fmri_runs[run_val]
        corr_val = []
        for alpha in alphas:
            model = Ridge(alpha=alpha, fit_intercept=False)
            model.fit(x_train_val, y_train_val)
            corr_val.append(columnwise_corrcoef(y_val, model.predict(x_val)))
        alpha = alphas[np.argmax(np.mean(corr_val, axis=1))]
        model = Ridge(alpha=alpha, fit_intercept=False)
        model.fit(x_train, y_train)
        corr_runs.append(columnwise_corrcoef(y_test, model.predict(x_test)))
        chosen.append(alpha)
    return np.mean(corr_runs, axis=0), chosen


def resampled(path):  # resample_fmri_data.py (force_resample, copy_header: today's nilearn's explicit defaults)
    from nilearn.image import resample_img

    affine, shape = BGP_GRID
    return resample_img(str(path), target_affine=np.array(affine), target_shape=shape, force_resample=True,
                        copy_header=True)


def symmetric_mask(imgs):  # compute_mask.py
    from nilearn.image import swap_img_hemispheres
    from nilearn.masking import compute_multi_epi_mask, intersect_masks

    mask = compute_multi_epi_mask(imgs, threshold=0.5)
    return intersect_masks([mask, swap_img_hemispheres(mask)], threshold=1)


def masked_runs(imgs, mask, smoothing_fwhm=None):  # compute_average_subject_fmri.py, fit_individual_subject.py
    from nilearn.maskers import NiftiMasker

    runs = []
    for img in imgs:
        # clean_args: nilearn's Butterworth filter on all columns at once instead of column by column in Python,
        # the same numbers (1e-6 apart in float32) in a thirtieth of the time
        masker = NiftiMasker(mask_img=mask, detrend=True, standardize=True, high_pass=1 / 128, t_r=T_R,
                             smoothing_fwhm=smoothing_fwhm, clean_args={"butterworth__copy": True})
        runs.append(masker.fit_transform(img))
    return runs


@pytest.fixture(scope="module")
def bgp(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("bgp")
    generate_dataset(root, str(tiny_model), n_participants=2, n_runs=N_RUNS, seed=3, layout="fmriprep")
    output_dir = root / "out"
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), "--procedure",
                 "bgp2024", "--average-participants", "--device", "cpu", "--pvalue-method", "none",
                 "--skip-reports"])
    assert code == 0
    bold = {subject: sorted((root / "bids" / "derivatives" / "fmriprep" / f"sub-{subject}" / "func")
                            .glob("*_desc-preproc_bold.nii.gz")) for subject in ("01", "02")}
    imgs = {subject: [resampled(path) for path in paths] for subject, paths in bold.items()}
    loaded = load_model(parse_model_spec(str(tiny_model)))
    settings = FeatureSettings(pooling="mean", step=64)
    regressors = {}  # layer -> per run
    for run in range(N_RUNS):
        events = pd.read_csv(root / "bids" / f"task-story_run-{run + 1}_events.tsv", sep="\t")
        words = events[events["trial_type"] == "word"]
        features = extract_word_features(loaded, list(words["word"]), settings, progress=False).hidden
        n_scans = imgs["01"][run].shape[-1]
        frame_times = np.arange(n_scans) * T_R + .5 * T_R
        onsets = words["onset"].to_numpy()
        offsets = onsets + words["duration"].to_numpy()
        for layer, activations in features.items():
            regressor = compute_regressor_from_activations(np.asarray(activations, dtype=np.float64), onsets,
                                                           offsets, frame_times)
            regressors.setdefault(layer, []).append(standardize(regressor[10:-10]))
    return output_dir, imgs, regressors


def _app_map(output_dir, subject, layer, stat, mask):
    from nilearn.masking import apply_mask

    path = next((output_dir / f"sub-{subject}" / "func").glob(f"*_layer-{layer}_stat-{stat}_statmap.nii.gz"))
    return apply_mask(str(path), mask), json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())


def constant_voxels(imgs, mask):
    """Voxels constant over a run of ``imgs``. Their code cleans float32 data in float32, which turns such a
    voxel into rounding noise of unit variance; the preset cleans in float64 and scores it 0. The one place
    where the two differ on purpose (rare in real BOLD; a few at this synthetic grid's edge)."""
    from nilearn.masking import apply_mask

    return np.logical_or.reduce([np.ptp(apply_mask(img, mask).astype(np.float64), axis=0) == 0 for img in imgs])


def _agreement(output_dir, subject, mask, fmri_runs, regressors, constant):
    assert constant.mean() < 0.01
    differences = {}
    for layer, regressors_runs in regressors.items():
        r, chosen = fit_runs(regressors_runs, fmri_runs)
        app_r, sidecar = _app_map(output_dir, subject, layer, "r", mask)
        differences[layer] = float(np.abs(app_r - r)[~constant].max())
        np.testing.assert_allclose(sidecar["AlphaPerFold"], chosen, rtol=1e-6, err_msg=f"layer {layer}")
    print(f"sub-{subject}: max |delta r| per layer {differences}; alphas per fold equal")
    return differences


def test_vectorised_corrcoef_is_numpys():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 7)), rng.standard_normal((50, 7))
    np.testing.assert_allclose(columnwise_corrcoef(a, b), [np.corrcoef(a[:, i], b[:, i])[0, 1] for i in range(7)],
                               atol=1e-12)


def test_bgp2024_average_participant_equals_their_code(bgp):
    output_dir, imgs, regressors = bgp
    mask = symmetric_mask([img for subject in ("01", "02") for img in imgs[subject]])
    app_mask = nib.load(next((output_dir / "sub-average" / "func").glob("*_desc-brain_mask.nii.gz")))
    np.testing.assert_array_equal(np.asarray(app_mask.dataobj) > 0, mask.get_fdata() > 0)
    runs = {subject: masked_runs(imgs[subject], mask) for subject in ("01", "02")}
    fmri_runs = []  # compute_average_subject_fmri.py, then fit_average_subject.py's trimming
    for run in range(N_RUNS):
        average = standardize(np.mean([runs[subject][run] for subject in runs], axis=0), axis=0)
        fmri_runs.append(standardize(average[10:-10]))
    constant = constant_voxels([img for subject in ("01", "02") for img in imgs[subject]], mask)
    differences = _agreement(output_dir, "average", mask, fmri_runs, regressors, constant)
    assert max(differences.values()) <= 1e-3, differences


@pytest.mark.parametrize("subject", ["01"])
def test_bgp2024_single_participant_equals_their_code(bgp, subject):
    output_dir, imgs, regressors = bgp
    mask = symmetric_mask(imgs[subject])
    app_mask = nib.load(next((output_dir / f"sub-{subject}" / "func").glob("*_desc-brain_mask.nii.gz")))
    np.testing.assert_array_equal(np.asarray(app_mask.dataobj) > 0, mask.get_fdata() > 0)
    fmri_runs = [standardize(run[10:-10]) for run in masked_runs(imgs[subject], mask, smoothing_fwhm=4)]
    no_voxel = np.zeros(fmri_runs[0].shape[1], bool)
    differences = _agreement(output_dir, subject, mask, fmri_runs, regressors, no_voxel)
    assert max(differences.values()) <= 1e-3, differences


def test_bgp2024_refuses_an_option_it_fixes(small_dataset, tmp_path, capsys):
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", "--procedure", "bgp2024",
                 "--alphas", "1", "10"])
    assert code == 64
    error = capsys.readouterr().err
    assert "--procedure bgp2024 fixes --alphas (100 215.443" in error and "leave --alphas out" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", [["--proc", "antonello2023", "--inner-cv", "loro"],
                                     ["--procedure=antonello2023", "--trim-scans", "10", "10"]])
def test_a_preset_refuses_what_it_fixes_however_the_procedure_is_spelled(small_dataset, tmp_path, capsys, options):
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", *options])
    assert code == 64
    assert "--procedure antonello2023 fixes --" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_antonello2023_refuses_a_single_stimulus(tmp_path, tiny_model, capsys):
    """One test stimulus needs at least two: a one-story dataset stops with one line (exit 64)."""
    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=1, seed=2)
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--procedure", "antonello2023",
                 "--models", "random:type", "--skip-bids-validation", "--skip-reports", "--pvalue-method", "none"])
    assert code == 64
    assert "--procedure antonello2023 tests on one held-out stimulus" in capsys.readouterr().err


def test_bgp2024_refuses_a_space_without_a_template(small_dataset, tmp_path, capsys):
    """Their 4 mm grid is in MNI millimetres: the raw layout's scanner space cannot be resampled to it."""
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", "--procedure", "bgp2024",
                 "--models", "random:type", "--skip-bids-validation", "--skip-reports"])
    assert code == 64
    error = capsys.readouterr().err
    assert "--procedure bgp2024 resamples the BOLD to its MNI grid" in error and "space 'orig'" in error


def test_bgp2024_accepts_the_value_it_fixes_and_records_itself(bgp):
    output_dir, _, _ = bgp
    sidecar = json.loads(next((output_dir / "sub-01" / "func").glob("*_layer-0_stat-r_statmap.json")).read_text())
    assert sidecar["Procedure"]["Name"] == "bgp2024"
    assert "compute_mask.py" in sidecar["Procedure"]["Steps"]["Mask"]
    assert sidecar["Cleaning"]["SmoothingFWHM"] == 4.0 and sidecar["Ridge"]["InnerCV"]["Scheme"] == "first"
    average = json.loads(next((output_dir / "sub-average" / "func").glob("*_layer-0_stat-r_statmap.json"))
                         .read_text())
    assert "SmoothingFWHM" not in average["Cleaning"]
    assert not validator_errors(output_dir)
    from bids_encoding.reports.boilerplate import methods

    text, cites = methods([sidecar])
    assert "followed the code of Bonnasse-Gahot & Pallier (2024) (https://github.com/l-bg/llms_brain_lateralization)" \
        in text and "first training run" in text and "bonnasse2024" in cites


def test_inner_cv_first_validates_on_the_first_training_run_and_single_on_the_last():
    from bids_encoding.ridge import InnerCV

    group_rows = [[(0, 10)], [(10, 25)], [(25, 30)]]
    assert InnerCV("first").validation_sets(group_rows, 30)[0].tolist() == list(range(0, 10))
    assert InnerCV("single").validation_sets(group_rows, 30)[0].tolist() == list(range(25, 30))


def test_preset_word_windows_add_64_tokens_each():
    assert FeatureSettings(step=64).plan(1024, is_encoder=False) == (1024, 960, 0)
    assert "step" not in FeatureSettings().cache_record()

