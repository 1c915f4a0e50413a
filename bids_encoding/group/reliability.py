"""Reliable voxels: the top fraction of the symmetric mask by inter-subject correlation, or else by the
participants' mean noise ceiling (CC_max from repeated stimuli)."""

import logging
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from bids_encoding.group.isc import inter_subject_correlation

LOGGER = logging.getLogger(__name__)


@dataclass
class Reliability:
    """Reliable voxels on the image grid, the ISC map they came from (or None) and its settings."""

    reliable: np.ndarray
    source: str
    fraction: float
    isc: np.ndarray | None = None
    isc_settings: dict | None = None


def reliable_voxels(bids_dir, results, mask, affine, fraction):
    """The :class:`Reliability` of the symmetric ``mask``; None (reliable-voxel scores n/a) when the
    participants have neither a shared stimulus nor a noise ceiling."""
    isc, settings = inter_subject_correlation(bids_dir, results, mask, affine)
    if isc is not None:
        ceiling, source = isc, "split-half inter-subject correlation (stat-isc)"
    else:
        maps = [np.asarray(nib.load(r.ceiling_path).dataobj, dtype=float)[mask] for r in results if r.ceiling_path]
        if not maps:
            LOGGER.warning("no inter-subject correlation and no noise ceiling: mean_r_reliable is n/a")
            return None
        ceiling = np.nanmean(maps, axis=0)
        source = f"noise ceiling CC_max (stat-ccmax), mean over {len(maps)} participant(s)"
    reliable = on_grid(ceiling >= np.nanquantile(ceiling, 1 - fraction), mask).astype(bool)
    return Reliability(reliable, source, fraction, None if isc is None else on_grid(isc, mask), settings)


def on_grid(values, mask):
    """Values of the voxels of ``mask`` put back on its grid (0 elsewhere)."""
    grid = np.zeros(mask.shape)
    grid[mask] = values
    return grid
