"""Secrets midtier makes up itself and keeps in its data directory, when the deployer gave
none: the agent desk's shared token and session key, a Direct Line secret.

Each lives in its own owner-only file, written whole or not at all, so the value survives a
restart and a crash never leaves half a secret.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("midtier.secrets")

MIN_SECRET_CHARS = 16  # a kept value shorter than this is made again


def read_or_create_secret(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The secret kept in ``path`` (owner-only), written with ``make()`` when missing.

    Written to a temporary file and renamed, so a crash never leaves half a secret. Returns
    the value and whether it was created now.
    """
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    except UnicodeDecodeError:
        value = ""
    if len(value) >= MIN_SECRET_CHARS and not any(c.isspace() for c in value):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
            log.warning("%s was readable by others; now owner-only", path)
        return value, False
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (value + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return value, True
