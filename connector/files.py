"""Files written whole or not at all: a reader sees the old file or the new, never half.

The new content goes to a temporary file in the same directory (made by ``mkstemp``: its
owner's alone), is flushed to disk, and then replaces the old one by ``os.replace``; on any
error the temporary file is removed and the old one stays.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO


@contextmanager
def replacing_bytes(path: Path, *, prefix: str | None = None) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends without an error."""
    fd, tmp = tempfile.mkstemp(prefix=prefix or path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def replacing_text(path: Path, *, prefix: str | None = None) -> Iterator[TextIO]:
    """``replacing_bytes`` for UTF-8 text."""
    fd, tmp = tempfile.mkstemp(prefix=prefix or path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
