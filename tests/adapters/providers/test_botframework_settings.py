"""The ``kind: botframework`` keys of providers.yaml: defaults, YAML's on/off, and every bad
value named by file and key, as the registry builds the provider."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from support.providers import build

from adapters.providers.botframework import BotFrameworkProvider
from connector.errors import ConfigErrors

ENDPOINT = "http://127.0.0.1:3979/api/messages"
APP_ID = "6f1c2a9e-0d4b-4c59-9a55-3b8e2f1d7c01"
PASSWORD = "remote-bot-password-0123456789"


def _provider(**block: Any) -> BotFrameworkProvider:
    return build(BotFrameworkProvider, "billing", SimpleNamespace(), **block)


def test_without_an_app_id_auth_is_off_and_the_defaults_hold() -> None:
    bot = _provider(endpoint=ENDPOINT, title="the billing bot")
    assert (bot.endpoint, bot.auth, bot.app_id, bot.channel_id) == (ENDPOINT, False, "", "")
    assert bot.conversation_update is True
    assert bot.service_url == "http://127.0.0.1:3978"  # midtier's public URL
    assert bot.bot_account().name == "the billing bot"


def test_with_an_app_id_auth_is_on_unless_turned_off() -> None:
    assert _provider(endpoint=ENDPOINT, app_id=APP_ID, app_password=PASSWORD).auth is True
    assert _provider(endpoint=ENDPOINT, app_id=APP_ID, auth=False).auth is False
    assert _provider(endpoint=ENDPOINT, app_id=APP_ID, auth="off").auth is False


@pytest.mark.parametrize("blank", [None, ""])
def test_a_blank_flag_means_its_default(blank: str | None) -> None:
    # What ``auth: ${BOT_AUTH:-}`` or an empty ``auth:`` gives.
    bot = _provider(
        endpoint=ENDPOINT,
        app_id=APP_ID,
        app_password=PASSWORD,
        auth=blank,
        conversation_update=blank,
    )
    assert (bot.auth, bot.conversation_update) == (True, True)


def test_service_url_and_channel_id_override_what_the_bot_is_told() -> None:
    bot = _provider(
        endpoint=ENDPOINT,
        service_url="https://midtier.example.com/",
        channel_id="webchat",
        conversation_update="no",
    )
    assert (bot.service_url, bot.channel_id) == ("https://midtier.example.com", "webchat")
    assert bot.conversation_update is False


@pytest.mark.parametrize(
    ("block", "key", "why"),
    [
        ({}, "endpoint", "Field required"),
        ({"endpoint": "/api/messages"}, "endpoint", "expected an http(s) URL"),
        ({"endpoint": ENDPOINT, "app_id": APP_ID}, "auth", "auth on needs app_id and app_password"),
        ({"endpoint": ENDPOINT, "auth": True}, "auth", "auth on needs app_id and app_password"),
        ({"endpoint": ENDPOINT, "auth": "maybe"}, "auth", "valid boolean"),
        ({"endpoint": ENDPOINT, "service_url": "midtier.example.com"}, "service_url", "http(s)"),
        ({"endpoint": ENDPOINT, "conversation_update": 2}, "conversation_update", "boolean"),
        ({"endpoint": ENDPOINT, "app_key": APP_ID}, "app_key", "unknown key"),
    ],
)
def test_bad_settings_name_file_and_key(block: dict[str, Any], key: str, why: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        _provider(**block)
    [error] = caught.value.errors
    assert (error.file, error.key) == ("providers.yaml", f"providers.billing.{key}")
    assert why in error.message


def test_the_app_password_is_in_no_error() -> None:
    with pytest.raises(ConfigErrors) as caught:
        _provider(endpoint="ftp://bots.example", app_password=PASSWORD, auth=True)
    assert PASSWORD not in str(caught.value)
    assert [e.key for e in caught.value.errors] == [
        "providers.billing.endpoint",
        "providers.billing.auth",
    ]
