"""Fixtures shared across test packages."""

from __future__ import annotations

import pytest
from support.bots.launch import bots_venv_missing


@pytest.fixture
def bots_venv() -> None:
    """The remote-bot tests need .venv-bots; scripts/test.sh builds it, so missing is a bug."""
    missing = bots_venv_missing()
    if missing is not None:
        pytest.fail(missing)
