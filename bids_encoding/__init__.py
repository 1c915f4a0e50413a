"""bids_encoding: voxel-wise encoding models of language-model features, as a BIDS-App."""

# The latest release (its git tag is v<RELEASE>, CHANGELOG.md's first heading): what the Boutiques descriptor and the
# container image are tagged with. __version__ says which commit is running.
RELEASE = "0.2.0"

try:  # written by setuptools-scm when the package is installed (pyproject.toml, [tool.setuptools_scm])
    from bids_encoding._version import __version__
except ImportError:  # a source tree that was never installed
    __version__ = "0+unknown"
