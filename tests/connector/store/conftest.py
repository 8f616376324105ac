"""The fixtures of the store's contract suites: a started store of every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connector.store_protocol import SessionStore
from tests.connector.store.contract import BACKENDS, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """The time every backend of a test reads (it moves only when the test says)."""
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS), ids=sorted(BACKENDS))
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[SessionStore]:
    """A started store of each backend in turn, closed after the test."""
    backend = BACKENDS[request.param](tmp_path, clock)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()
