"""Signing webhooks as Meta does, for the Messenger and WhatsApp kits.

Meta has no official Python SDK that verifies webhooks, so the recipe is written out here,
apart from the adapters' own code: ``X-Hub-Signature-256: sha256=`` + the lower-case hex
HMAC-SHA256 of the body as sent, keyed with the app secret. Meta sends JSON with non-ASCII
escaped (``\\u00e4``), which is what :func:`encode` writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, cast

from multidict import CIMultiDict
from pydantic import BaseModel

from connector.channel_protocol import ChannelHost
from connector.channels import ChannelRequest
from connector.context import ChannelContext, SharedHttp
from support.channel_kits import WebhookCall
from support.fake_platform import Call, FakePlatform

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"
HEADER = "X-Hub-Signature-256"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: Any) -> bytes:
    """A payload as Meta puts it on the wire (non-ASCII as \\u escapes)."""
    return json.dumps(payload).encode()


def signed(body: bytes, app_secret: str) -> WebhookCall:
    """A webhook POST of ``body`` signed with ``app_secret``."""
    return WebhookCall(
        body=body, headers={"Content-Type": "application/json", HEADER: sign(body, app_secret)}
    )


def forged(call: WebhookCall) -> WebhookCall:
    """``call`` signed with a secret that is not the app's."""
    return WebhookCall(
        body=call.body,
        headers={**call.headers, HEADER: sign(call.body, "not-the-app-secret")},
        method=call.method,
        query=call.query,
    )


def payload(platform: str, name: str) -> bytes:
    """A documented example payload, as stored under ``tests/payloads/<platform>/``."""
    return (PAYLOADS / platform / name).read_bytes()


class Answered:
    """The calls a fake platform route answered with success, in order (calls failed on
    purpose by ``fail_next`` never reach a route, so they are not deliveries)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def indexed(self, platform: FakePlatform) -> list[tuple[int, Call]]:
        index = {id(call): i for i, call in enumerate(platform.calls)}
        return [(index[id(call)], call) for call in self.calls if id(call) in index]


def request(
    call: WebhookCall, *, path: str = "/channels/test", query: dict[str, str] | None = None
) -> ChannelRequest:
    """``call`` as the core hands it to an adapter (headers case-insensitive)."""
    return ChannelRequest(
        method=call.method,
        url="https://chat.example.com" + path,
        path=path,
        headers=CIMultiDict(call.headers),
        query=query or {},
        body=call.body,
        content_type=call.headers.get("Content-Type", ""),
    )


def context(settings: BaseModel, http: SharedHttp, name: str) -> ChannelContext[Any]:
    """What the core builds an adapter from; these adapters never call their host."""
    return ChannelContext(
        name=name,
        settings=settings,
        data_dir=Path("unused"),
        public_url="https://chat.example.com",
        http=http,
        file="midtier.yaml",
        key=f"channels.{name}",
        host=cast(ChannelHost, None),
    )


def json_payload(platform: str, name: str) -> Any:
    """A documented example payload, parsed."""
    return json.loads(payload(platform, name))
