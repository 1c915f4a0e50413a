"""Features computed once per stimulus and model, reused by every participant and run.

Each entry is one ``.npy`` array ``(n_layers + 1, n_words, hidden_size)``
read memory-mapped, with a JSON record of what made it. Keys hash the
stimulus (words and timings), the model (id, revision, source, dtype) and
the extraction settings, so a changed setting is a new entry.
"""

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)
CACHE_FORMAT = 1


def stimulus_fingerprint(words):
    """Hash of a run's words and their timings.

    Parameters
    ----------
    words : pandas.DataFrame
        Columns ``onset``, ``duration``, ``word``.
    """
    digest = hashlib.sha256()
    for onset, duration, word in words[["onset", "duration", "word"]].itertuples(index=False):
        digest.update(f"{onset:.4f}\t{duration:.4f}\t{word}\n".encode())
    return digest.hexdigest()[:16]


def _key(record):
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


class FeatureCache:
    """A folder of feature arrays shared by all participants.

    Parameters
    ----------
    root : Path
        Cache folder (``<work-dir>/features`` by default).
    """

    def __init__(self, root):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, record):
        label = record.get("model_label", "model")
        return self.root / label / f"{_key({**record, 'cache_format': CACHE_FORMAT})}.npy"

    def load(self, record):
        """Return the cached array (memory-mapped) and its info, or ``None``."""
        path = self.path(record)
        meta_path = path.with_suffix(".json")
        if not (path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            LOGGER.warning("ignoring unreadable cached features %s: %s", path, error)
            return None
        if meta.get("record") != record or list(array.shape) != meta.get("shape"):
            LOGGER.warning("ignoring cached features %s: they do not match their record", path)
            return None
        self.hits += 1
        return array, meta["info"]

    def save(self, record, array, info):
        """Write atomically (temporary file, then rename) and return a memory map."""
        path = self.path(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix, write in ((".npy", lambda f: np.save(f, array)),
                              (".json", lambda f: f.write(json.dumps(
                                  {"record": record, "shape": list(array.shape), "info": info},
                                  indent=1).encode()))):
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as stream:
                write(stream)
            os.replace(temporary, path.with_suffix(suffix))
        self.misses += 1
        return np.load(path, mmap_mode="r")
