"""pycortex flat maps, the reports' optional extra: drawn from a pycortex filestore that holds fsaverage5 (or
fsaverage, the map brought up by nearest neighbour), made here for the test from nilearn's fsaverage5 meshes;
nothing without pycortex. The user's own pycortex filestore and options are never touched."""

import base64
import gzip
import io
import socket
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_encoding.reports.pycortex import pycortex_flatmap, pycortex_subject
from bids_encoding.surface import HEMIS, N_VERTICES, mesh

PLANTED_CENTRE, PLANTED_RADIUS = (-56.0, -24.0, 0.0), 14.0  # the demo's left cluster, as in test_surface.py
# pycortex's names of nilearn's fsaverage5 meshes
MESHES = {"flat": "flat", "inflated": "infl", "pia": "pial", "wm": "white"}


def nilearn_mesh(kind, hemi):
    """One of the fsaverage5 meshes nilearn ships: ``(n, 3)`` coordinates and ``(m, 3)`` faces."""
    from nilearn import datasets

    path = Path(datasets.__file__).parent / "data" / "fsaverage5" / f"{MESHES[kind]}_{HEMIS[hemi]}.gii.gz"
    with gzip.open(path) as compressed:
        image = nib.GiftiImage.from_bytes(compressed.read())
    coordinates, faces = image.agg_data(("pointset", "triangle"))
    return coordinates, faces


def write_mesh(path, coordinates, faces):
    arrays = [nib.gifti.GiftiDataArray(np.asarray(coordinates, dtype=np.float32), intent="NIFTI_INTENT_POINTSET"),
              nib.gifti.GiftiDataArray(np.asarray(faces, dtype=np.int32), intent="NIFTI_INTENT_TRIANGLE")]
    nib.save(nib.GiftiImage(darrays=arrays), str(path))


def subdivide(meshes):
    """The meshes split once, each edge's midpoint a new vertex after the old ones, as fsaverage6 is made from
    fsaverage5 (its first 10242 vertices are fsaverage5's); ``meshes`` ``{kind: (coordinates, faces)}``, the
    flat mesh's faces a subset of the others'."""
    faces = meshes["pia"][1]
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys = np.unique(edges[:, 0] * N_VERTICES + edges[:, 1])
    ends = np.stack([keys // N_VERTICES, keys % N_VERTICES], axis=1)

    def split(faces):
        a, b, c = faces.T
        ab, bc, ca = (N_VERTICES + np.searchsorted(keys, np.minimum(u, v) * N_VERTICES + np.maximum(u, v))
                      for u, v in ((a, b), (b, c), (c, a)))
        return np.concatenate([np.stack(face, axis=1) for face in
                               ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])

    return {kind: (np.vstack([xyz, xyz[ends].mean(axis=1)]), split(faces)) for kind, (xyz, faces) in meshes.items()}


def write_subject(store, name, denser=False):
    """A pycortex subject ``name`` in ``store`` from nilearn's fsaverage5 meshes (``denser``: split once, 40962
    vertices a hemisphere): ``surfaces/{flat,inflated,pia,wm}_{lh,rh}.gii`` (pycortex takes the mean of pia and wm
    for the fiducial) and an empty ``transforms/``."""
    folder = Path(store) / name
    (folder / "surfaces").mkdir(parents=True)
    (folder / "transforms").mkdir()
    for hemi, pycortex_hemi in (("L", "lh"), ("R", "rh")):
        meshes = {kind: nilearn_mesh(kind, hemi) for kind in MESHES}
        for kind, (coordinates, faces) in (subdivide(meshes) if denser else meshes).items():
            write_mesh(folder / "surfaces" / f"{kind}_{pycortex_hemi}.gii", coordinates, faces)


def use_store(monkeypatch, store):
    """Point pycortex at ``store`` for this test only: its database object (and its surface cache) and options."""
    from cortex import database, options

    for name, value in (("filestore", str(store)), ("_subjects", None), ("_memocache", {}), ("auxfile", None)):
        monkeypatch.setattr(database.db, name, value, raising=False)
    monkeypatch.setattr(database, "default_filestore", str(store))
    monkeypatch.setitem(options.config["basic"], "filestore", str(store))
    monkeypatch.delitem(options.config["basic"], "cache", raising=False)  # caches in the subject's folder


@pytest.fixture
def cortex(tmp_path, monkeypatch):
    """pycortex, with no way to the network: a download (``cortex.download_subject``, or any connection) fails."""
    # pycortex writes its options.cfg into $XDG_CONFIG_HOME on its first import: a temporary one, not the user's
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    cortex = pytest.importorskip("cortex")

    def refuse(*args, **kwargs):
        raise AssertionError("pycortex tried to download")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for module in (cortex, cortex.utils):
        monkeypatch.setattr(module, "download_subject", refuse)
    return cortex


def planted():
    """1 on the left pial vertices within 14 mm of the demo's left temporal centre, 0 elsewhere."""
    inside = np.linalg.norm(mesh("pial", "L").coordinates - np.array(PLANTED_CENTRE), axis=1) <= PLANTED_RADIUS
    assert 10 < inside.sum() < 500
    return {"L": inside.astype(float), "R": np.zeros(N_VERTICES)}


def pixels(uri):
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    data = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert len(data) > 20_000
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def blob(uri, zero):
    """The pixels where a map's flat map differs from the all-zero map's, and red (the planted 1 in RdBu_r)."""
    image = pixels(uri)
    return (np.abs(image - zero).sum(axis=2) > 30) & (image[..., 0] > image[..., 2] + 60)


def test_pycortex_flatmap(cortex, tmp_path, monkeypatch):
    """A map with a planted left temporal blob: a flat map of both hemispheres over the curvature, red at the
    blob (left hemisphere, the left half), the curvature elsewhere; n/a draws as 0 does (the curvature)."""
    store = tmp_path / "pycortex"
    write_subject(store, "fsaverage5")
    use_store(monkeypatch, store)
    assert pycortex_subject() == "fsaverage5"

    zero = pixels(pycortex_flatmap({"L": np.zeros(N_VERTICES), "R": np.zeros(N_VERTICES)}, vmax=1.0))
    height, width, _ = zero.shape
    assert height > 500 and width > 1.5 * height
    assert len(np.unique(zero.reshape(-1, 3), axis=0)) > 20  # curvature, background and colour bar
    missing = pixels(pycortex_flatmap({"L": np.full(N_VERTICES, np.nan), "R": np.full(N_VERTICES, np.nan)}, 1.0))
    assert np.array_equal(missing, zero)

    uri = pycortex_flatmap(planted(), vmax=1.0)
    Path("/tmp/pycortex_flatmap.png").write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    red = blob(uri, zero)
    assert 100 < red.sum() < 0.05 * red.size
    assert red[:, : width // 2].sum() > 0.99 * red.sum()
    # nothing was written outside the temporary filestore's subject
    assert sorted(path.name for path in store.iterdir()) == ["fsaverage5"]


def test_pycortex_fsaverage(cortex, tmp_path, monkeypatch):
    """A denser fsaverage subject (fsaverage5 split once, nested as fsaverage is): the map brought up by nearest
    neighbour lands where it does on fsaverage5; fsaverage5 is preferred when the filestore has both."""
    store = tmp_path / "pycortex"
    write_subject(store, "fsaverage", denser=True)
    use_store(monkeypatch, store)
    assert pycortex_subject() == "fsaverage"
    zero = pixels(pycortex_flatmap({"L": np.zeros(N_VERTICES), "R": np.zeros(N_VERTICES)}, vmax=1.0))
    dense = blob(pycortex_flatmap(planted(), vmax=1.0), zero)

    write_subject(store, "fsaverage5")
    use_store(monkeypatch, store)
    assert pycortex_subject() == "fsaverage5"
    zero5 = pixels(pycortex_flatmap({"L": np.zeros(N_VERTICES), "R": np.zeros(N_VERTICES)}, vmax=1.0))
    sparse = blob(pycortex_flatmap(planted(), vmax=1.0), zero5)
    assert dense.shape == sparse.shape and dense.sum() > 100
    assert (dense & sparse).sum() / (dense | sparse).sum() > 0.6


def test_pycortex_unusable(cortex, tmp_path, monkeypatch):
    """A filestore without fsaverage5 or fsaverage, or a subject without flat surfaces: no pycortex map."""
    store = tmp_path / "pycortex"
    write_subject(store, "fsaverage5")
    (store / "fsaverage5" / "surfaces" / "flat_lh.gii").unlink()
    (store / "S1" / "surfaces").mkdir(parents=True)
    use_store(monkeypatch, store)
    assert pycortex_subject() is None
    assert pycortex_flatmap({"L": np.zeros(N_VERTICES), "R": np.zeros(N_VERTICES)}, vmax=1.0) is None


def test_without_pycortex(monkeypatch):
    """pycortex not importable: no subject, no flat map, and no error."""
    monkeypatch.setitem(sys.modules, "cortex", None)
    assert pycortex_subject() is None
    assert pycortex_flatmap({"L": np.zeros(N_VERTICES), "R": np.zeros(N_VERTICES)}, vmax=1.0) is None
