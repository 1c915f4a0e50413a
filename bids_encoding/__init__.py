"""bids_encoding: voxel-wise encoding models of language-model features, as a BIDS-App."""

__version__ = "0.1.0"
