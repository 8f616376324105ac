"""Fixtures shared across test packages."""

from __future__ import annotations

import os

import pytest
from support.bots.launch import bots_venv_missing

from connector.store.sqlite_cache import CHECK_KEPT

# Every session a unit of work hands back to the SQLite store for reuse is checked, when
# it is reused, against what was committed (servers started by tests inherit it).
os.environ.setdefault(CHECK_KEPT, "1")


@pytest.fixture
def bots_venv() -> None:
    """The remote-bot tests need .venv-bots; scripts/test.sh builds it, so missing is a bug."""
    missing = bots_venv_missing()
    if missing is not None:
        pytest.fail(missing)
