"""The desk's keys in providers.yaml (and allowed_origins in midtier.yaml) fail fast with file
and key, as ``midtier check`` reports them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.checks import check_config

REPO = Path(__file__).resolve().parents[3]
GOOD = "a-token-of-sixteen-chars"


def _problems(
    tmp_path: Path, desk: dict[str, Any], midtier: dict[str, Any] | None = None
) -> list[str]:
    config = tmp_path / "config"
    shutil.copytree(REPO / "bot_configs", config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["agents"].update(desk)
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    if midtier:
        settings = yaml.safe_load((config / "midtier.yaml").read_text())
        settings.update(midtier)
        (config / "midtier.yaml").write_text(yaml.safe_dump(settings))
    return [str(e) for e in check_config(config)]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIDTIER_AGENT_TOKEN", raising=False)
    monkeypatch.delenv("MIDTIER_AGENT_DANA_TOKEN", raising=False)


def test_personal_agents_and_the_default_deployment_check_clean(tmp_path: Path) -> None:
    agents = {
        "dana": {"name": "Dana", "token": GOOD},
        "lee.k": {"name": "Lee", "token": GOOD + "x"},
    }
    assert _problems(tmp_path, {"agents": agents}) == []


@pytest.mark.parametrize(
    ("desk", "expected"),
    [
        (
            {"agents": {"dana": {"name": "Dana", "token": "short"}}},
            "providers.yaml: providers.agents.agents.dana.token: Value error, "
            "a token needs at least 16 characters and no spaces",
        ),
        (
            {"agents": {"dana": {"name": "Dana", "token": "sixteen chars but spaces"}}},
            "providers.yaml: providers.agents.agents.dana.token: Value error, "
            "a token needs at least 16 characters and no spaces",
        ),
        (
            {"agents": {"dana": {"name": "Dana", "token": GOOD, "email": "d@example.com"}}},
            "providers.yaml: providers.agents.agents.dana.email: unknown key",
        ),
        (
            {"agents": {"dana": {"token": GOOD}}},
            "providers.yaml: providers.agents.agents.dana.name: Field required",
        ),
        (
            {"agents": {"agent_dana": {"name": "Dana", "token": GOOD}}},
            "providers.yaml: providers.agents.agents.agent_dana: agent ids are 1-40 lower-case "
            "letters, digits, '_', '.' or '-', and do not start with 'agent_'",
        ),
        (
            {"agents": {"Dana": {"name": "Dana", "token": GOOD}}},
            "providers.yaml: providers.agents.agents.Dana: agent ids are 1-40 lower-case "
            "letters, digits, '_', '.' or '-', and do not start with 'agent_'",
        ),
        (
            {"token": GOOD, "agents": {"dana": {"name": "Dana", "token": GOOD}}},
            "providers.yaml: providers.agents.agents.dana.token: the same token as token",
        ),
        (
            {"token": "too-short"},
            "providers.yaml: providers.agents.token: Value error, "
            "a token needs at least 16 characters and no spaces",
        ),
        (
            {"shared_signin": False},
            "providers.yaml: providers.agents.shared_signin: with shared_signin: false, "
            "list the agents who may sign in under agents",
        ),
        (
            {"sign_in": {"timeout_s": 0}},
            "providers.yaml: providers.agents.sign_in.timeout_s: Input should be greater than 0",
        ),
        ({"colour": "blue"}, "providers.yaml: providers.agents.colour: unknown key"),
        (
            {"agents": {"dana": {"name": "Dana", "token": "${MIDTIER_AGENT_DANA_TOKEN}"}}},
            "providers.yaml: providers.agents.agents.dana.token: "
            "environment variable MIDTIER_AGENT_DANA_TOKEN is not set",
        ),
    ],
)
def test_bad_desk_settings_name_file_and_key(
    tmp_path: Path, desk: dict[str, Any], expected: str
) -> None:
    assert _problems(tmp_path, desk) == [expected]


def test_allowed_origins_must_be_origins(tmp_path: Path) -> None:
    assert _problems(tmp_path, {}, {"allowed_origins": ["https://help.example.com", "*"]}) == []
    assert _problems(
        tmp_path / "2", {}, {"allowed_origins": ["https://help.example.com/chat"]}
    ) == [
        "midtier.yaml: allowed_origins: Value error, 'https://help.example.com/chat' is not an "
        "origin like https://www.example.com or *"
    ]
