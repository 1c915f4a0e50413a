"""bids_encoding: voxel-wise encoding models of language-model features, as a BIDS-App."""

try:  # written by setuptools-scm when the package is installed (pyproject.toml, [tool.setuptools_scm])
    from bids_encoding._version import __version__
except ImportError:  # a source tree that was never installed
    __version__ = "0+unknown"
