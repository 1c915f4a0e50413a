"""Files written whole or not at all (several jobs share output, cache and work folders)."""

import os
import uuid
from pathlib import Path


def atomic_write(path, write, suffix=".tmp"):
    """Write ``path`` atomically: ``write(temporary)`` writes a temporary file beside it (in the same folder, so
    that the rename is atomic; ``suffix`` is its extension, for writers that read it), which then replaces
    ``path``; the temporary file goes when writing fails."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
