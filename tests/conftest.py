"""Fixtures shared across test packages."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from support.bots.launch import bots_venv_missing

from connector.store.sqlite_cache import CHECK_KEPT

# Every session a unit of work hands back to the SQLite store for reuse is checked, when
# it is reused, against what was committed (servers started by tests inherit it).
os.environ.setdefault(CHECK_KEPT, "1")

# Property tests check what is answered, not how fast: on a busy 2-core machine generating
# inputs or running one example may take longer than Hypothesis's defaults allow.
settings.register_profile("midtier", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("midtier")


@pytest.fixture
def bots_venv() -> None:
    """The remote-bot tests need .venv-bots; scripts/test.sh builds it, so missing is a bug."""
    missing = bots_venv_missing()
    if missing is not None:
        pytest.fail(missing)
