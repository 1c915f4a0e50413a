"""pycortex flat maps in the reports, an optional extra: drawn only when pycortex is installed and the user's pycortex
database (its filestore) already holds fsaverage5 or fsaverage. Nothing is ever downloaded: pycortex fetches
fsaverage only when ``cortex.download_subject`` is called, which this module never does.

pycortex writes its own caches into the subject's folder of the filestore, as it always does (``cache/``,
``surface-info/``, ``views/``).
"""

import base64
import contextlib
import io
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from bids_encoding.surface import DENSITIES, HEMIS, N_VERTICES

SUBJECTS = ("fsaverage5", "fsaverage")  # in order of preference
HEIGHT = 600  # pixels of the flat map's height (pycortex caches its pixel maps per height)
OUTSIDE = 1e-7  # as reports.surface's: vertices exactly 0 (or n/a) are left out and the curvature shows


def _cortex():
    """pycortex, imported quietly (it prints on import and while it builds its caches), or ``None``."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import cortex
    except Exception:  # not installed, a broken install or a broken options.cfg: no pycortex maps
        return None
    return cortex


def _has_surfaces(folder):
    """Whether a subject's folder in a pycortex filestore has what a flat map with its curvature needs: flat and
    fiducial (or pia and wm) surfaces of both hemispheres, and a ``transforms`` folder (pycortex lists it)."""
    surfaces = folder / "surfaces"

    def has(kind):
        return all(any(surfaces.glob(f"{kind}_{hemi}.*")) for hemi in ("lh", "rh"))

    return (folder / "transforms").is_dir() and has("flat") and (has("fiducial") or has("pia") and has("wm"))


def pycortex_subject():
    """The subject of the user's pycortex database that fsaverage5 maps are drawn on.

    Returns
    -------
    str or None
        ``"fsaverage5"``, else ``"fsaverage"``: the first that the filestore pycortex uses
        (``cortex.database.db.filestore``, from the ``[basic] filestore`` option of pycortex's ``options.cfg``)
        holds; ``None`` when pycortex cannot be imported or the filestore has neither. Only files are looked at:
        nothing is downloaded (importing pycortex writes its ``options.cfg`` where the user has none).
    """
    cortex = _cortex()
    if cortex is None:
        return None
    try:
        store = Path(cortex.database.db.filestore)
        return next((name for name in SUBJECTS if _has_surfaces(store / name)), None)
    except Exception:  # a filestore option that is not a path
        return None


@lru_cache(maxsize=4)
def _nearest(filestore, subject):
    """For each hemisphere of ``subject``, the fsaverage5 vertex whose value each of its vertices takes: all of
    them for fsaverage5; for a denser fsaverage, the nearest of its first 10242 vertices (fsaverage5's, as the
    icosahedral meshes are nested) on its sphere, inflated or fiducial surface (the first it has)."""
    from cortex.database import db
    from scipy.spatial import cKDTree

    surfaces = db.get_paths(subject)["surfs"]
    kind = next(kind for kind in ("sphere", "inflated", "fiducial") if kind in surfaces or kind == "fiducial")
    index = []
    for points, _ in db.get_surf(subject, kind):
        if len(points) not in DENSITIES.values():
            raise ValueError(f"pycortex subject {subject} has {len(points)} vertices in a hemisphere, not fsaverage's")
        index.append(np.arange(N_VERTICES) if len(points) == N_VERTICES else
                     cKDTree(points[:N_VERTICES]).query(points)[1])
    return tuple(index)


def pycortex_flatmap(values, vmax, cmap="RdBu_r", symmetric=True, threshold=None):
    """A map on fsaverage5 as pycortex's flat map of both hemispheres, over its curvature, with a colour bar.

    Parameters
    ----------
    values : dict
        ``{"L": (10242,) array, "R": (10242,) array}``; brought to the subject's density (fsaverage) by nearest
        neighbour.
    vmax : float
        The top of the colour scale.
    cmap : str
        A colour map pycortex knows (its own or matplotlib's).
    symmetric : bool
        The scale from ``-vmax`` (else 0) to ``vmax``.
    threshold : float or None
        Vertices with |value| below it are left out, as n/a ones are: the curvature shows there. Default: only
        exactly 0.

    Returns
    -------
    str or None
        A PNG data URI, or ``None`` when :func:`pycortex_subject` finds no subject (or the subject's meshes are not
        fsaverage's: with a warning).
    """
    subject = pycortex_subject()
    if subject is None:
        return None
    import cortex
    import matplotlib.pyplot as plt
    from scipy.sparse import SparseEfficiencyWarning

    from bids_encoding.reports.style import STYLE  # also sets matplotlib's Agg backend

    try:
        index = _nearest(cortex.database.db.filestore, subject)
    except ValueError as error:
        warnings.warn(f"no pycortex flat map: {error}", stacklevel=2)
        return None
    threshold = OUTSIDE if threshold is None else threshold
    data = []
    for hemi, nearest in zip(HEMIS, index):
        hemisphere = np.asarray(values[hemi], dtype=float).copy()
        hemisphere[np.abs(np.nan_to_num(hemisphere)) < threshold] = np.nan
        data.append(hemisphere[nearest])
    vmin = -vmax if symmetric else 0.0
    vertex = cortex.Vertex(np.concatenate(data), subject, vmin=vmin, vmax=vmax, cmap=cmap)
    buffer = io.BytesIO()
    with plt.rc_context(STYLE), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # pycortex's curvature (computed once, then cached) solves in a sparse format scipy converts
        warnings.simplefilter("ignore", SparseEfficiencyWarning)
        cortex.quickflat.make_png(buffer, vertex, height=HEIGHT, with_curvature=True, with_rois=False,
                                  with_sulci=False, with_labels=False, with_colorbar=True,
                                  colorbar_ticks=np.linspace(vmin, vmax, 3), bgcolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
