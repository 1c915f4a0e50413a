"""bids_encoding: voxel-wise encoding models of language-model features, as a BIDS-App."""

# The latest release (its git tag is v<RELEASE>, CHANGELOG.md's first heading): what the Boutiques descriptor and the
# container image are tagged with. __version__ says which commit is running.
RELEASE = "0.2.0"

try:  # written by setuptools-scm when the package is installed (pyproject.toml, [tool.setuptools_scm])
    from bids_encoding._version import __commit_id__, __version__
except ImportError:  # a source tree that was never installed
    __version__, __commit_id__ = "0+unknown", None


def version_line():
    """``bids_encoding 0.2.0 (commit 1a2b3c4d5)``: the version and, at a release tag too, the commit it was
    installed from (setuptools-scm's ``g<hash>``)."""
    commit = (__commit_id__ or "").removeprefix("g")
    return f"bids_encoding {__version__}" + (f" (commit {commit})" if commit else "")
