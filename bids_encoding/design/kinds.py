"""The registry of designs: add a :class:`~bids_encoding.design.base.DesignKind` here to offer it."""

from bids_encoding.design.hrf import HRF
from bids_encoding.design.lanczos import LANCZOS_FIR

DESIGNS = {kind.name: kind for kind in (HRF, LANCZOS_FIR)}


def design_kind(name):
    """The registered design called ``name``; a ``ValueError`` that lists the valid ones otherwise."""
    try:
        return DESIGNS[name]
    except KeyError:
        raise ValueError(f"unknown design '{name}': use one of {', '.join(DESIGNS)}") from None
