"""Session store backends and the URL that picks one.

| URL | backend |
|---|---|
| ``memory://`` | :class:`MemoryStore`: in-process, for tests |
| ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` | :class:`SqliteStore` |
| a plain path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` | :class:`SqliteStore` |

The ``sqlite:`` form follows SQLAlchemy's: what follows ``sqlite:///`` is the path, so an
absolute path gives four slashes. Opening a store has no side effects; ``start()`` creates
the file and its directories.
"""

from __future__ import annotations

from connector.interfaces import SessionStore
from connector.store.memory import MemoryStore
from connector.store.sqlite import SqliteStore, Synchronous

SQLITE_PREFIX = "sqlite:///"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
PLANNED = ("redis://", "rediss://", "valkey://", "valkeys://")


def open_store(
    url: str, *, synchronous: Synchronous = "normal", commit_window_s: float = 0.0
) -> SessionStore:
    """The store ``url`` names (see the module docstring); ``ValueError`` if none does.

    ``synchronous`` is SQLite's: ``normal`` survives the process being killed, ``full``
    also a power cut (an fsync per commit). ``commit_window_s``: how long SQLite's group
    commits wait for more writes (``connector.store.sqlite_db``).
    """
    if url == "memory://":
        return MemoryStore()
    if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
        return SqliteStore(
            url[len(SQLITE_PREFIX) :], synchronous=synchronous, commit_window_s=commit_window_s
        )
    if url.startswith("sqlite:"):
        raise ValueError(
            f"store URL {url!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    if url.startswith(PLANNED):
        raise ValueError(
            f"store URL {url!r}: the Redis store is not supported yet;"
            " use memory:// or a SQLite file"
        )
    if "://" not in url and url.endswith(SQLITE_SUFFIXES):
        return SqliteStore(url, synchronous=synchronous, commit_window_s=commit_window_s)
    raise ValueError(
        f"store URL {url!r}: expected memory://, sqlite:///path.db or a path ending in"
        f" {', '.join(SQLITE_SUFFIXES)}"
    )


__all__ = ["MemoryStore", "SessionStore", "SqliteStore", "open_store"]
