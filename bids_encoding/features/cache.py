"""Features computed once per stimulus and model, shared by every participant, run and job.

An entry is a folder ``<root>/<model label>/<key>/`` holding one ``.npy``
array per layer (read memory-mapped) and ``meta.json`` with the record that
made it and each array's SHA-256, checked on every read. Keys hash the
stimulus (words and timings), the model (id, revision, source, dtype) and
the extraction settings, so a changed setting is a new entry. Writes are
atomic (temporary file, then rename) and a file lock per entry makes
concurrent jobs compute each entry once: the others wait, then read it.
Layers asked for later are added to the entry.
"""

import fcntl
import hashlib
import json
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bids_encoding.atomic import atomic_write

LOGGER = logging.getLogger(__name__)
CACHE_FORMAT = 2


def stimulus_fingerprint(words, context=None):
    """Hash of a run's words and their timings (and of the context words before them).

    Parameters
    ----------
    words : pandas.DataFrame
        Columns ``onset``, ``duration``, ``word``.
    context : str or None
        Fingerprint of what precedes the run when context continues across runs.
    """
    digest = hashlib.sha256((context or "").encode())
    for onset, duration, word in words[["onset", "duration", "word"]].itertuples(index=False):
        digest.update(f"{onset:.4f}\t{duration:.4f}\t{word}\n".encode())
    return digest.hexdigest()[:16]


def _key(record):
    text = json.dumps({**record, "cache_format": CACHE_FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _file_sha256(path):
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _atomic_write(path, write):
    """``write(stream)`` into ``path``, atomically."""
    def to_file(temporary):
        with open(temporary, "wb") as stream:
            write(stream)
    atomic_write(path, to_file)


class FeatureCache:
    """A folder of per-layer feature arrays.

    Parameters
    ----------
    root : Path
        Cache folder (``<work-dir>/features``, or ``--feature-cache``).
    """

    def __init__(self, root):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def entry(self, record):
        return self.root / record.get("model_label", "model") / _key(record)

    def _read_meta(self, entry):
        try:
            return json.loads((entry / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def has(self, record, layers):
        """Whether every layer is cached (from the entry's record alone: no checksums, no arrays read)."""
        meta = self._read_meta(self.entry(record))
        return meta is not None and meta.get("record") == record and all(str(layer) in meta["arrays"]
                                                                          for layer in layers)

    def load(self, record, layers):
        """Return ``({layer: memmap}, info)`` when every layer is cached and intact, else ``None``."""
        entry = self.entry(record)
        meta = self._read_meta(entry)
        if meta is None or meta.get("record") != record:
            return None
        arrays = {}
        for layer in layers:
            item = meta["arrays"].get(str(layer))
            if item is None:
                return None
            path = entry / item["file"]
            try:
                if _file_sha256(path) != item["sha256"]:
                    raise ValueError("checksum mismatch")
                arrays[layer] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as error:
                LOGGER.warning("cached features %s are damaged (%s): computing them again", path, error)
                return None
        return arrays, meta["info"]

    def save(self, record, arrays, info):
        """Add arrays to the entry (atomically) and update its record."""
        entry = self.entry(record)
        entry.mkdir(parents=True, exist_ok=True)
        meta = self._read_meta(entry)
        if meta is None or meta.get("record") != record:
            meta = {"record": record, "arrays": {}, "info": {}}
        for layer, array in arrays.items():
            name = f"layer-{int(layer):03d}.npy"
            _atomic_write(entry / name, lambda stream, a=array: np.save(stream, np.ascontiguousarray(a)))
            meta["arrays"][str(layer)] = {"file": name, "sha256": _file_sha256(entry / name),
                                          "shape": list(np.shape(array))}
        meta["info"] = {**info, "layers": sorted(int(k) for k in meta["arrays"])}
        _atomic_write(entry / "meta.json", lambda stream: stream.write(json.dumps(meta, indent=1).encode()))

    @contextmanager
    def _lock(self, record):
        entry = self.entry(record)
        entry.parent.mkdir(parents=True, exist_ok=True)
        with open(entry.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def get_or_compute(self, record, layers, compute):
        """Cached arrays for ``layers``, computing the missing ones once across processes.

        Parameters
        ----------
        record : dict
            What identifies the features (JSON-serialisable).
        layers : list of int
        compute : callable
            ``compute(missing_layers) -> ({layer: array}, info)``.

        Returns
        -------
        arrays : dict
            ``{layer: memmap}``.
        info : dict
        computed : bool
            Whether this call computed anything.
        """
        cached = self.load(record, layers)
        if cached is not None:
            self.hits += 1
            return (*cached, False)
        with self._lock(record):
            cached = self.load(record, layers)  # another process may have finished meanwhile
            if cached is not None:
                self.hits += 1
                return (*cached, False)
            missing = [layer for layer in layers if self.load(record, [layer]) is None]
            arrays, info = compute(missing)
            self.save(record, arrays, info)
            self.misses += 1
        arrays, info = self.load(record, layers)
        return arrays, info, True
