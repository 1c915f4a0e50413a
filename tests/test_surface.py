"""Maps on the cortical surface (fsaverage5): a planted left temporal response in MNI space lands on the left
lateral temporal surface; fMRIPrep's surface BOLD is found in each generation's naming, brought to fsaverage5 and
fitted; the GIFTI outputs load and pass the validator; the reports show surface views and a viewer that fetches
nothing."""

import html
import json
import re
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
from conftest import bidsignore_patterns_used
from conftest import validator_issues as validate

from bids_encoding.cli.entry import main
from bids_encoding.errors import BadDataError
from bids_encoding.inputs.bold import read_surface_bold
from bids_encoding.inputs.derivatives import surface_bold
from bids_encoding.surface import DENSITIES, N_VERTICES, mesh, project, read_gifti, write_gifti

PLANTED_CENTRE, PLANTED_RADIUS = (-56.0, -24.0, 0.0), 14.0  # the demo's left cluster (synthetic/generator.py)
MARGIN = 0.3  # planted 1 inside the sphere: the left lateral temporal surface's mean exceeds the rest's by this


def lateral_temporal(hemi="L"):
    """The vertices of the lateral temporal surface around the planted sphere (pial, MNI mm): superior and middle
    temporal gyri from y = -50 to 0, z = -20 to 10, more than 45 mm from the midline."""
    x, y, z = mesh("pial", hemi).coordinates.T
    return (np.abs(x) > 45) & (np.sign(x) == (-1 if hemi == "L" else 1)) & (y > -50) & (y < 0) & (z > -20) & (z < 10)


def planted_volume(voxel=4.0, seed=0):
    """A 4 mm MNI grid: 1 in the planted sphere, small noise elsewhere."""
    shape = (int(184 / voxel), int(220 / voxel), int(184 / voxel))
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = (-92.0, -128.0, -74.0)
    xyz = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T).reshape(*shape, 3)
    data = np.random.default_rng(seed).normal(0, 0.05, shape)
    data[np.linalg.norm(xyz - np.array(PLANTED_CENTRE), axis=-1) <= PLANTED_RADIUS] = 1.0
    return nib.Nifti1Image(data.astype(np.float32), affine)


def test_a_planted_left_temporal_response_lands_on_the_left_lateral_temporal_surface():
    projected = project(planted_volume())
    assert {hemi: values.shape for hemi, values in projected.items()} == {"L": (N_VERTICES,), "R": (N_VERTICES,)}
    target = lateral_temporal("L")
    elsewhere = np.concatenate([projected["L"][~target], projected["R"]])
    assert projected["L"][target].mean() - elsewhere.mean() > MARGIN
    assert projected["R"][lateral_temporal("R")].mean() < 0.05  # nothing leaks onto the right hemisphere
    # most of the planted sphere's vertices are in that region: it is where the response lands
    inside = np.linalg.norm(mesh("pial", "L").coordinates - PLANTED_CENTRE, axis=1) <= PLANTED_RADIUS
    assert (target & inside).sum() > 0.5 * inside.sum()


def test_fmriprep_surface_bold_is_found_in_each_generation_naming(tmp_path):
    bold = tmp_path / "sub-01_task-story_run-1_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz"
    bold.touch()
    names = {"24": "sub-01_task-story_run-1_hemi-{h}_space-fsaverage5_bold.func.gii",
             "1.x": "sub-01_task-story_run-1_space-fsaverage5_hemi-{h}_bold.func.gii",
             "narratives": "sub-01_task-story_run-1_space-fsaverage6_hemi-{h}.func.gii",
             "old": "sub-01_task-story_run-1_bold_space-fsaverage5.{h}.func.gii"}
    for generation, pattern in names.items():
        for path in tmp_path.glob("*.func.gii"):
            path.unlink()
        for hemi in "LR":
            (tmp_path / pattern.format(h=hemi)).touch()
        # fsnative and another run's files are never taken
        (tmp_path / "sub-01_task-story_run-1_hemi-L_space-fsnative_bold.func.gii").touch()
        (tmp_path / "sub-01_task-story_run-12_hemi-L_space-fsaverage5_bold.func.gii").touch()
        space, paths = surface_bold(bold)
        assert space == ("fsaverage6" if generation == "narratives" else "fsaverage5"), generation
        assert paths == {hemi: tmp_path / pattern.format(h=hemi) for hemi in "LR"}, generation
    for path in tmp_path.glob("*.func.gii"):
        path.unlink()
    for hemi in "LR":
        (tmp_path / names["narratives"].format(h=hemi)).touch()
    (tmp_path / names["24"].format(h="L")).touch()  # a left fsaverage5 file alone: the complete fsaverage6 pair
    assert surface_bold(bold)[0] == "fsaverage6"
    for hemi in "LR":
        (tmp_path / names["24"].format(h=hemi)).touch()
    assert surface_bold(bold)[0] == "fsaverage5"  # the sparsest complete density
    for path in tmp_path.glob("*.func.gii"):
        path.unlink()
    (tmp_path / names["24"].format(h="L")).touch()
    assert surface_bold(bold) is None  # one hemisphere only


def write_series(path, values):
    arrays = [nib.gifti.GiftiDataArray(np.asarray(volume, dtype=np.float32), intent="NIFTI_INTENT_TIME_SERIES")
              for volume in values.T]
    nib.save(nib.gifti.GiftiImage(darrays=arrays), str(path))


def test_a_denser_fsaverage_is_brought_to_fsaverage5_and_a_wrong_vertex_count_stops(tmp_path):
    rng = np.random.default_rng(0)
    series = {hemi: rng.normal(size=(DENSITIES["fsaverage6"], 7)) for hemi in "LR"}
    paths = {hemi: tmp_path / f"x_space-fsaverage6_hemi-{hemi}.func.gii" for hemi in "LR"}
    for hemi in "LR":
        write_series(paths[hemi], series[hemi])
    data = read_surface_bold(paths, "fsaverage6")
    assert data.shape == (7, 2 * N_VERTICES)
    np.testing.assert_allclose(data[:, :N_VERTICES], series["L"][:N_VERTICES].T, rtol=1e-6)
    np.testing.assert_allclose(data[:, N_VERTICES:], series["R"][:N_VERTICES].T, rtol=1e-6)
    write_series(paths["R"], rng.normal(size=(12345, 7)))
    with pytest.raises(BadDataError, match=re.escape(str(paths["R"])) + ".*12345 vertices"):
        read_surface_bold(paths, "fsaverage6")


def test_gifti_maps_and_labels_read_back(tmp_path):
    values = np.linspace(-1, 1, N_VERTICES)
    write_gifti(values, "L", tmp_path / "map.func.gii")
    image = nib.load(tmp_path / "map.func.gii")
    assert image.meta["AnatomicalStructurePrimary"] == "CortexLeft"
    np.testing.assert_allclose(read_gifti(tmp_path / "map.func.gii"), values, rtol=1e-6)
    labels = (values > 0.5).astype(int) * 2
    write_gifti(labels, "R", tmp_path / "rois.label.gii", {2: "pSTS_R"})
    image = nib.load(tmp_path / "rois.label.gii")
    assert {label.key: label.label for label in image.labeltable.labels} == {0: "unknown", 2: "pSTS_R"}
    np.testing.assert_array_equal(read_gifti(tmp_path / "rois.label.gii"), labels)


@pytest.fixture(scope="module")
def surface_study(tmp_path_factory, tiny_model):
    """Two participants preprocessed by a current fMRIPrep with its fsaverage5 surface BOLD, fitted (participant
    and group levels); the reports of sub-01 and of the group."""
    from bids_encoding.reports.group import write_group_report
    from bids_encoding.reports.participant import write_participant_report
    from bids_encoding.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("surface")
    generate_dataset(root, str(tiny_model), n_participants=2, n_runs=3, layout="fmriprep", seed=3, surfaces=True)
    out = root / "derivatives"
    assert main([str(root / "bids"), str(out), "participant", "--models", str(tiny_model), "--device", "cpu",
                 "--alphas", "10", "100", "1000", "--pvalue-method", "none"]) == 0
    assert main([str(root / "bids"), str(out), "group", "--group-bootstraps", "20"]) == 0
    return root, out, write_participant_report(out, "01"), write_group_report(out)


def test_the_fit_on_fmriprep_surface_bold_recovers_the_planted_response(surface_study):
    _, out, _, _ = surface_study
    for subject in ("01", "02"):
        name = f"sub-{subject}/func/sub-{subject}_task-story_hemi-{{}}_space-fsaverage5_model-tinygpt2_layer-best_" \
               "stat-r_statmap"
        values = {hemi: read_gifti(out / (name.format(hemi) + ".func.gii")) for hemi in "LR"}
        assert values["L"].shape == values["R"].shape == (N_VERTICES,)
        target = lateral_temporal("L")
        elsewhere = np.concatenate([values["L"][~target], values["R"]])
        assert np.nanmean(values["L"][target]) - np.nanmean(elsewhere) > 0.1
        sidecar = json.loads((out / (name.format("L") + ".json")).read_text())
        assert sidecar["Surface"]["Source"].startswith("fMRIPrep surface BOLD")
        assert len(sidecar["Surface"]["Bold"]) == 6 and sidecar["Hemisphere"] == "L"
        assert sidecar["Model"]["Id"].endswith("tinygpt2") and sidecar["Layer"] == "best"
        scores = (out / f"sub-{subject}/func/sub-{subject}_task-story_space-MNI152NLin2009cAsym_scores.tsv")
        assert len(scores.read_text().splitlines()) == 1 + 4  # layers 0-2 and best: the vertices add no row


def test_group_maps_and_rois_are_on_the_surface(surface_study):
    _, out, _, _ = surface_study
    group = out / "group"
    t_map = read_gifti(group / "task-story_hemi-L_space-fsaverage5_model-tinygpt2_stat-t_statmap.func.gii")
    assert np.nanmean(t_map[lateral_temporal("L")]) > np.nanmean(t_map[~lateral_temporal("L")]) + 1.0
    assert (group / "task-story_hemi-L_space-fsaverage5_model-tinygpt2_desc-LminusR_stat-r_statmap.func.gii").exists()
    assert not (group / "task-story_hemi-R_space-fsaverage5_model-tinygpt2_desc-LminusR_stat-r_statmap.func.gii"
                ).exists()  # L - R lives on the left hemisphere
    labels = nib.load(group / "task-story_hemi-L_space-fsaverage5_desc-rois_dseg.label.gii")
    names = {label.label for label in labels.labeltable.labels}
    assert {"pSTS_L", "aSTS_L", "BA44_L"} <= names
    pial = mesh("pial", "L").coordinates
    psts = next(label.key for label in labels.labeltable.labels if label.label == "pSTS_L")
    on_psts = np.asarray(labels.darrays[0].data) == psts
    assert on_psts.any() and np.linalg.norm(pial[on_psts].mean(0) - (-51, -39, 3)) < 15


@pytest.mark.skipif(shutil.which("bids-validator-deno") is None, reason="bids-validator-deno is not installed")
def test_the_validator_accepts_the_surface_outputs(surface_study, tmp_path):
    _, out, _, _ = surface_study
    errors = [issue for issue in validate(out) if issue[0] == "error"]
    assert not errors, errors[:5]
    assert "*_statmap.func.gii" in bidsignore_patterns_used(out, tmp_path)


def test_the_reports_show_the_surface_and_load_nothing_from_outside(surface_study):
    _, _, participant, group = surface_study
    for report in (participant, group):
        text = report.read_text()
        assert "On the cortical surface" in text and text.count('<iframe class="viewer"') == 1
        inner = html.unescape(text)  # the viewer's page, inside srcdoc
        assert "niivue" in inner.lower() and "<canvas" in inner
        for page in (text, inner):
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
            assert not re.search(r"""@import|url\(\s*["']?(https?:|//)""", page)
    assert "fitted on fMRIPrep&#39;s surface BOLD" in participant.read_text() or \
        "fitted on fMRIPrep's surface BOLD" in participant.read_text()
    assert "pSTS_L" in group.read_text()  # the ROI outlines are named


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_reports_render_in_chromium_without_a_network_request(surface_study, tmp_path):
    _, _, participant, group = surface_study
    for report in (participant, group):
        log = tmp_path / f"{report.stem}-netlog.json"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--enable-unsafe-swiftshader",
                        "--use-angle=swiftshader", "--disable-background-networking", "--disable-component-update",
                        f"--log-net-log={log}", "--virtual-time-budget=5000", f"--screenshot={tmp_path / 'shot.png'}",
                        "--window-size=1300,2000", report.as_uri()], capture_output=True, timeout=120, check=False)
        events = json.loads(log.read_text())["events"]
        # the page's own requests carry its file:// origin; the browser's background services do not
        fetched = {event["params"]["url"] for event in events if "url" in event.get("params", {})
                   and "file://" in str(event["params"].get("network_isolation_key", ""))
                   and not event["params"]["url"].startswith(("file:", "data:", "about:", "blob:"))}
        assert not fetched, fetched
        assert (tmp_path / "shot.png").stat().st_size > 10_000


def test_the_plan_counts_the_surface_vertices_fitted_beside_the_voxels(surface_study, tiny_model, tmp_path, capsys):
    root, _, _, _ = surface_study
    arguments = [str(root / "bids"), str(tmp_path / "out"), "participant", "--models", str(tiny_model),
                 "--participant-label", "01", "--device", "cpu", "--plan"]
    assert main(arguments) == 0
    assert f"+ {2 * N_VERTICES} vertices of fMRIPrep's surface BOLD" in capsys.readouterr().out
    assert main([*arguments, "--surface", "volume"]) == 0
    assert "vertices" not in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_surface_bold_file_stops_with_a_line_that_names_it(tmp_path, damage):
    from bids_encoding.inputs.bold import clean_surface_bold

    rng = np.random.default_rng(0)
    paths = {hemi: tmp_path / f"sub-01_task-story_hemi-{hemi}_space-fsaverage5_bold.func.gii" for hemi in "LR"}
    for hemi in "LR":
        write_series(paths[hemi], rng.normal(size=(N_VERTICES, 20)))
    written = paths["R"].read_bytes()
    paths["R"].write_bytes(written[:len(written) // 2] if damage == "truncated" else b"")
    with pytest.raises(BadDataError, match=re.escape(str(paths["R"])) + ".*truncated or corrupt"):
        clean_surface_bold(paths, "fsaverage5", 2.0)
