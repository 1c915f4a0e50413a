"""Package exports imported on first use (PEP 562), so that importing one light module of a package (its settings)
does not import the package's heavy ones (torch, nilearn, pybids): ``bids_encoding --help`` answers at once."""

import importlib


def lazy_exports(package, exports):
    """``__getattr__`` and ``__dir__`` for a package's ``__init__``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict
        ``{name: submodule}``: each public name and the submodule (relative to the package) that defines it.

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("bids_encoding.ridge", {"InnerCV": "cv"})
    >>> getattr_("InnerCV").__name__
    'InnerCV'
    """

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
