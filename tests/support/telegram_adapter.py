"""What the Telegram adapter tests share: the adapter built from a context, requests built
from the fixtures, and python-telegram-bot's reading of the same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import telegram
from multidict import CIMultiDict

from adapters.channels.telegram import HEADER, TelegramChannel, TelegramSettings
from connector.channel_protocol import ChannelHost
from connector.channels import ChannelRequest
from connector.context import ChannelContext, SharedHttp
from support.channel_kits.telegram import BOT_TOKEN, SECRET

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "telegram"
PUBLIC_URL = "https://chat.example.com"
# Offline: python-telegram-bot's Bot makes no call until a method is awaited.
PTB_BOT = telegram.Bot(BOT_TOKEN)


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def payload_json(name: str) -> Any:
    return json.loads(payload(name))


def ptb_update(body: bytes) -> telegram.Update:
    """The update as python-telegram-bot reads it."""
    update = telegram.Update.de_json(json.loads(body), PTB_BOT)
    assert update is not None
    return update


def request(body: bytes, secret: str | None = SECRET) -> ChannelRequest:
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/json"})
    if secret is not None:
        headers[HEADER] = secret
    return ChannelRequest(
        method="POST",
        url=f"{PUBLIC_URL}/channels/telegram",
        path="/channels/telegram",
        headers=headers,
        query={},
        body=body,
        content_type="application/json",
    )


def channel(tmp_path: Path, http: SharedHttp | None = None, **settings: Any) -> TelegramChannel:
    raw = {"bot_token": BOT_TOKEN, "secret_token": SECRET, **settings}
    context = ChannelContext(
        name="telegram",
        settings=TelegramSettings.model_validate(raw),
        data_dir=tmp_path,
        public_url=PUBLIC_URL,
        http=http or SharedHttp(),
        file="midtier.yaml",
        key="channels.telegram",
        host=cast(ChannelHost, None),  # a webhook channel never calls its host
    )
    return TelegramChannel(context)
