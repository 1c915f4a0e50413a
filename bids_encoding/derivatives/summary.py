"""Summary measures of a participant's maps (the scores table), and which voxels are left and right."""

import logging

import numpy as np

from bids_encoding.errors import BadDataError
from bids_encoding.hemispheres import is_template_space, symmetric_mask

LOGGER = logging.getLogger(__name__)
TOP_FRACTION = 0.10
_WARNED = set()  # one warning per message and run, not one per participant


def _warn_once(message, *args):
    text = message % args
    if text not in _WARNED:
        _WARNED.add(text)
        LOGGER.warning(text)


def participant_hemispheres(mask_img, space):
    """Left voxels of the mask whose mirror is in the mask, and those mirrors, as indices into the mask's voxels.

    Left and right mean something only in a template space, where x = 0 is
    the midline; in native or scanner space x = 0 is the scanner's
    isocentre. Outside template spaces, and on grids not symmetric about
    x = 0, there are no hemispheres (``None``, with a warning).

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray) or None
    """
    if not is_template_space(space):
        _warn_once("space-%s is not a template space: left and right scores are n/a (x = 0 is not the "
                   "midline in native or scanner space)", space)
        return None
    data = np.asarray(mask_img.dataobj) > 0
    try:
        symmetric, left, mirror = symmetric_mask([data], mask_img.affine)
    except BadDataError as error:
        _warn_once("left and right scores are n/a: %s", error)
        return None
    position = np.full(data.size, -1)
    position[np.flatnonzero(data.ravel())] = np.arange(int(data.sum()))
    left_flat = np.flatnonzero(left.ravel())
    return position[left_flat], position[mirror[left_flat]]


def summary_scores(test_r, test_r2, validation, hemispheres=None):
    """Summary measures of one model and layer over a participant's mask.

    Parameters
    ----------
    test_r, test_r2 : array ``(n_folds, n_voxels)``
        Test Pearson r and R² of each outer fold.
    validation : array ``(n_folds, n_voxels)``
        Inner-validation score of each outer fold. The top voxels of a fold
        are chosen on its validation score, which never saw that fold's test
        data (the mean over folds would: the other folds validate on it), so
        the top-10% mean is 0 under the null.
    hemispheres : tuple or None
        From :func:`participant_hemispheres`; ``None``: left and right n/a.

    Returns
    -------
    dict
        ``mean_r``, ``mean_r_left``, ``mean_r_right``, ``mean_r_top10``,
        ``mean_r2``, ``mean_r2_top10``.
    """
    test_r, test_r2 = np.atleast_2d(test_r).astype(np.float64), np.atleast_2d(test_r2).astype(np.float64)
    validation = np.atleast_2d(validation)
    n_top = max(1, int(round(TOP_FRACTION * test_r.shape[1])))
    top = np.argsort(validation, axis=1, kind="stable")[:, -n_top:]
    r, r2 = test_r.mean(axis=0), test_r2.mean(axis=0)
    left, right = hemispheres if hemispheres is not None and len(hemispheres[0]) else (None, None)
    return {
        "mean_r": float(r.mean()),
        "mean_r_left": float(r[left].mean()) if left is not None else float("nan"),
        "mean_r_right": float(r[right].mean()) if right is not None else float("nan"),
        "mean_r_top10": float(np.take_along_axis(test_r, top, axis=1).mean()),
        "mean_r2": float(r2.mean()),
        "mean_r2_top10": float(np.take_along_axis(test_r2, top, axis=1).mean()),
    }
