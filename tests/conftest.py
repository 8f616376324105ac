"""Fixtures shared across test packages."""

from __future__ import annotations

import os

# The core checks its own promises that cost too much for every message otherwise (a
# session handed back for reuse is still what was committed; records made without
# validation have every field, in order). Set before anything imports connector (it is
# read once); servers started by tests inherit it.
os.environ.setdefault("MIDTIER_SELF_CHECKS", "1")

import pytest
from hypothesis import HealthCheck, settings
from support.bots.launch import bots_venv_missing

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
