"""Preprocessed derivatives as fMRIPrep writes them: confounds in the real column layout, brain masks, the
mask priority, the average participant, and the raw BOLD never used in their place."""

import json
import shutil
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from conftest import templateflow_home

from bids_encoding.cli import main
from bids_encoding.cli.demo import recovery_summary
from bids_encoding.features.models import model_label
from bids_encoding.inputs.masks import participant_mask
from bids_encoding.synthetic import generate_dataset
from bids_encoding.synthetic.generator import BRAIN_CENTER, BRAIN_RADII

FAST = ["--device", "cpu", "--pvalue-method", "none", "--alphas", "10", "100", "1000", "10000"]
SPACE = "MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def fmriprep(tmp_path_factory, tiny_model):
    """The demo story preprocessed by a current fMRIPrep; a head-motion artifact twice the noise in the BOLD."""
    root = tmp_path_factory.mktemp("fmriprep")
    generate_dataset(root, str(tiny_model), n_participants=2, n_runs=3, layout="fmriprep", seed=3,
                     motion_artifact=2.0)
    return root


def _participant(root, output_dir, tiny_model, *options):
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), *FAST, *options])
    assert code == 0
    return recovery_summary(output_dir, root / "ground_truth", model_label(str(tiny_model)))


def _sidecar(output_dir, subject):
    return json.loads(next(output_dir.glob(f"sub-{subject}/func/*_layer-best_stat-r_statmap.json")).read_text())


@pytest.fixture(scope="module")
def with_confounds(fmriprep, tiny_model, tmp_path_factory):
    """Participant level with motion confounds, cosines and scrubbing, the derivatives named, and the
    average participant; then the group level."""
    output_dir = tmp_path_factory.mktemp("out") / "confounds"
    recovered = _participant(fmriprep, output_dir, tiny_model, "--confounds", "motion", "high_pass", "scrub",
                             "--derivatives", str(fmriprep / "bids" / "derivatives" / "fmriprep"), "--res", "2",
                             "--average-participants")
    assert main([str(fmriprep / "bids"), str(output_dir), "group", "--group-bootstraps", "50"]) == 0
    return output_dir, recovered


def test_motion_confounds_of_current_fmriprep_restore_the_planted_response(fmriprep, with_confounds, tmp_path,
                                                                           tiny_model):
    output_dir, cleaned = with_confounds
    raw = _participant(fmriprep, tmp_path / "plain", tiny_model)
    for subject in ("sub-01", "sub-02"):
        assert cleaned[subject]["left"] > raw[subject]["left"] + 0.05, (cleaned, raw)
        assert abs(cleaned[subject]["null"]) < 0.03
    sidecar = _sidecar(output_dir, "01")
    assert sidecar["Confounds"]["Strategy"] == ["motion", "high_pass", "scrub"]
    assert sidecar["BOLD"]["Mask"]["Source"] == "derivative"
    assert all(f.endswith("_res-2_desc-brain_mask.nii.gz") for f in sidecar["BOLD"]["Mask"]["Files"])
    for run in sidecar["Runs"]:
        assert "_res-2_desc-preproc_bold" in run["Bold"]
        assert run["Confounds"]["File"].endswith("_desc-confounds_timeseries.tsv")
        assert {"trans_x", "trans_x_derivative1", "rot_z_derivative1_power2", "cosine00"} <= set(
            run["Confounds"]["Columns"])
    # the planted spikes: every run has scans over the FD threshold once the 10 + 5 trimmed scans are out
    assert sum(run["Confounds"]["CensoredScans"] for run in sidecar["Runs"]) > 0


def test_average_participant_is_fitted_and_reported_apart_from_the_participants(with_confounds):
    output_dir, recovered = with_confounds
    assert recovered["sub-average"]["left"] > max(recovered[s]["left"] for s in ("sub-01", "sub-02"))
    assert _sidecar(output_dir, "average")["AverageOf"] == ["sub-01", "sub-02"]
    import pandas as pd

    group = output_dir / "group"
    scores = pd.read_csv(group / f"task-story_space-{SPACE}_scores.tsv", sep="\t")
    assert set(scores["participant"]) == {"sub-01", "sub-02"}
    average = pd.read_csv(group / f"task-story_space-{SPACE}_desc-average_scores.tsv", sep="\t")
    assert set(average["participant"]) == {"sub-average"}
    assert list(group.glob("*_desc-average_fits.tsv"))


def test_preprocessed_bold_left_out_by_the_selection_is_not_replaced_by_the_raw_bold(fmriprep, tmp_path,
                                                                                     tiny_model, capsys):
    code = main([str(fmriprep / "bids"), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--res", "1", *FAST])
    err = capsys.readouterr().err
    assert code == 18, err  # BIDS-Apps: nothing selected
    assert "space-MNI152NLin2009cAsym_res-2" in err and "--res 1" in err and "Traceback" not in err
    code = main([str(fmriprep / "bids"), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--derivatives", str(tmp_path / "nowhere"), *FAST])
    assert code == 66 and "--derivatives" in capsys.readouterr().err


def _template_mask(path):
    """A 2 mm brain mask on an MNI-like grid: the generator's brain ellipsoid."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-96.0, -132.0, -78.0)
    ijk = np.indices((97, 115, 97)).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    inside = ((((xyz - BRAIN_CENTER) / BRAIN_RADII) ** 2).sum(-1) <= 1.0).reshape(97, 115, 97)
    nib.Nifti1Image(inside.astype(np.uint8), affine).to_filename(path)


def test_lateral_edge_signal_kept_by_the_template_mask_not_by_the_epi_mask(tmp_path, tiny_model, monkeypatch,
                                                                            caplog):
    """Head tissue around the brain and a signal dropout at the lateral temporal edge, where the planted left
    cluster is: the EPI mask drops most of the cluster; the template's brain mask keeps it all."""
    root = tmp_path / "head"
    generate_dataset(root, str(tiny_model), n_participants=1, n_runs=3, layout="fmriprep", seed=4,
                     head_tissue=True)
    for mask in (root / "bids").rglob("*_desc-brain_mask.*"):
        mask.unlink()  # no derivative masks: the template's is next in line
    labels = np.asarray(nib.load(root / "ground_truth" / "planted_labels.nii.gz").dataobj)
    bolds = sorted((root / "bids").rglob("*_desc-preproc_bold.nii.gz"))
    assert nib.load(bolds[0]).get_data_dtype() == np.int16

    folder = templateflow_home(tmp_path, monkeypatch)  # TemplateFlow's skeleton: empty images, no download
    runs = [SimpleNamespace(bold_path=path, brain_mask=None) for path in bolds]
    epi = participant_mask(runs, space=SPACE)
    assert epi.source == "epi" and "no TemplateFlow brain mask" in caplog.text
    epi_kept = np.asarray(epi.img.dataobj)[labels == 1].mean()
    assert epi_kept < 0.5

    _template_mask(folder / f"tpl-{SPACE}_res-02_desc-brain_mask.nii.gz")
    output_dir = tmp_path / "out"
    recovered = _participant(root, output_dir, tiny_model)
    mask_path = next(output_dir.glob("sub-01/func/*_desc-brain_mask.nii.gz"))
    assert np.asarray(nib.load(mask_path).dataobj)[labels == 1].all()
    record = json.loads(mask_path.with_name(mask_path.name.replace(".nii.gz", ".json")).read_text())
    assert record["MaskSource"]["Source"] == "template" and record["MaskSource"]["Template"] == SPACE
    assert recovered["sub-01"]["left"] > 0.3
    shutil.rmtree(root)


@pytest.mark.parametrize(("unit", "pixdim", "seconds"), [("msec", 2000.0, 2.0), ("sec", 2.0, 2.0),
                                                        ("unknown", 1.5, 1.5)])
def test_the_header_tr_of_a_run_without_raw_sidecar_is_read_in_its_time_unit(tmp_path, unit, pixdim, seconds):
    """A preprocessed run with no raw twin takes its TR from the NIfTI header, in the header's unit (a header
    without a unit is read in seconds, as nibabel and nilearn do)."""
    from bids_encoding.inputs.layout import _header_repetition_time

    img = nib.Nifti1Image(np.zeros((2, 2, 2, 5), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", unit)
    img.header["pixdim"][4] = pixdim
    path = tmp_path / "sub-01_task-story_desc-preproc_bold.nii.gz"
    img.to_filename(path)
    assert _header_repetition_time(path) == pytest.approx(seconds)
