"""open_store: which URL opens which backend, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.store import MemoryStore, SqliteStore, open_store


async def test_memory_url_opens_memory_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/midtier.db", "data/midtier.db"),
        ("sqlite:////var/lib/midtier/midtier.db", "/var/lib/midtier/midtier.db"),
        ("data/midtier.db", "data/midtier.db"),
        ("/var/lib/midtier/store.sqlite3", "/var/lib/midtier/store.sqlite3"),
    ],
)
async def test_sqlite_urls_and_paths_open_sqlite_store(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


async def test_open_store_creates_nothing_until_start(tmp_path: Path) -> None:
    path = tmp_path / "new" / "midtier.db"
    store = open_store(str(path))
    assert not path.parent.exists()
    await store.start()
    try:
        assert path.is_file()
    finally:
        await store.close()


async def test_redis_url_is_not_supported_yet() -> None:
    with pytest.raises(ValueError, match="not supported yet"):
        open_store("redis://localhost:6379/0")


@pytest.mark.parametrize(
    "url", ["", "sqlite://", "sqlite:///", "sqlite:midtier.db", "postgres://db/x", "notes.txt"]
)
async def test_unknown_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="store URL"):
        open_store(url)
