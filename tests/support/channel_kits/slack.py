"""The Slack kit: events and button clicks signed as Slack signs them (with slack_sdk's own
``SignatureVerifier``), and ``chat.postMessage`` answered as Slack documents it."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from multidict import CIMultiDict
from slack_sdk.signature import SignatureVerifier

from adapters.channels.slack import SlackChannel, SlackSettings
from connector.channel_protocol import ChannelHost
from connector.channels import ChannelRequest
from connector.context import ChannelContext, SharedHttp
from support.channel_kits import Reply, WebhookCall
from support.fake_platform import Call, FakePlatform

# Test values in the shape of Slack's (a signing secret is 32 hex digits).
SECRET = "8f742231b10e8888abcd99edabcd00a5"
WRONG_SECRET = "00000000000000000000000000000000"
TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
TEAM = "T0MIDTIER"
APP = "A0MIDTIER"
BOT_USER = "U0MIDBOT"
BOT_ID = "B0MIDBOT"
PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "slack"
FORM = "application/x-www-form-urlencoded"
NOW = 1_700_000_000  # the adapters' clock in tests that talk to the adapter directly


def sign(
    body: bytes,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers Slack sends with ``body``, signed by slack_sdk."""
    stamp = str(int(time.time()) if ts is None else ts)
    try:
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    except UnicodeDecodeError:  # slack_sdk signs text only; a test may send other bytes
        base = f"v0:{stamp}:".encode() + body
        signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature or "",
    }


def payload(name: str) -> dict[str, Any]:
    """One of Slack's documented payloads (``tests/payloads/slack/<name>.json``)."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return data


def adapter(http: SharedHttp | None = None, **settings: Any) -> SlackChannel:
    """The adapter as midtier builds it, its clock at NOW."""
    context = ChannelContext(
        name="slack",
        settings=SlackSettings(signing_secret=SECRET, bot_token=TOKEN, **settings),
        data_dir=Path("data"),
        public_url="https://chat.example.com",
        http=http or SharedHttp(),
        file="midtier.yaml",
        key="channels.slack",
        host=cast(ChannelHost, None),  # webhook channels do not call into it
    )
    built = SlackChannel(context)
    built.clock = lambda: NOW
    return built


def request(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    content_type: str = "application/json",
) -> ChannelRequest:
    """A call to /channels/slack as the core hands it over; signed at NOW unless
    ``headers`` are given."""
    given = headers if headers is not None else sign(body, ts=NOW, content_type=content_type)
    return ChannelRequest(
        method=method,
        url="https://chat.example.com/channels/slack",
        path="/channels/slack",
        headers=CIMultiDict(given),
        query={},
        body=body,
        content_type=given.get("Content-Type", content_type),
    )


def event(data: dict[str, Any]) -> ChannelRequest:
    """A signed Events API call with ``data`` as its JSON body."""
    return request(json.dumps(data).encode())


def interaction(data: dict[str, Any]) -> ChannelRequest:
    """A signed interactivity call: ``data`` in the form's ``payload`` field."""
    return request(urlencode({"payload": json.dumps(data)}).encode(), content_type=FORM)


def escape(text: str) -> str:
    """Text as Slack writes it in events (and reads it in chat.postMessage)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def envelope(event: dict[str, Any], *, event_id: str, team: str = TEAM) -> dict[str, Any]:
    """An ``event_callback`` body around ``event``, as the Events API delivers it."""
    return {
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "team_id": team,
        "api_app_id": APP,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMElEIn0",
    }


def direct_channel(user: str) -> str:
    """The direct-message channel of a user with the bot (``D…``)."""
    return f"D{user}"


class SlackKit:
    """Drives the ``slack`` channel through a fake Slack Web API."""

    kind = "slack"
    env = {"SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": TOKEN}
    secret_key = "signing_secret"
    signs_body = True

    def __init__(self) -> None:
        self._ts = itertools.count(1)
        self.accepted: list[int] = []  # indexes in platform.calls of the posts Slack took

    def ts(self) -> str:
        """A fresh message ``ts``, as Slack gives every message."""
        return f"{int(time.time())}.{next(self._ts):06d}"

    def settings(self, api_base: str) -> dict[str, Any]:
        return {
            "kind": "slack",
            "signing_secret": "${SLACK_SIGNING_SECRET}",
            "bot_token": "${SLACK_BOT_TOKEN}",
            "api_base": api_base,
        }

    def prepare(self, platform: FakePlatform) -> None:
        def post_message(call: Call) -> dict[str, Any]:
            # The fake platform calls this only for posts it does not fail on purpose.
            self.accepted.append(next(i for i, c in enumerate(platform.calls) if c is call))
            sent = call.json
            ts = self.ts()
            return {
                "ok": True,
                "channel": sent["channel"],
                "ts": ts,
                "message": {
                    "type": "message",
                    "text": sent["text"],
                    "user": BOT_USER,
                    "bot_id": BOT_ID,
                    "app_id": APP,
                    "ts": ts,
                    "team": TEAM,
                },
            }

        platform.route("POST", "/chat.postMessage", post_message)

    def message(self, url: str, text: str, *, user: str, message_id: str) -> WebhookCall:
        ts = self.ts()
        event = {
            "type": "message",
            "channel": direct_channel(user),
            "user": user,
            "text": escape(text),
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im",
            "client_msg_id": str(uuid.uuid4()),
            "team": TEAM,
        }
        body = json.dumps(envelope(event, event_id=message_id)).encode()
        return WebhookCall(body=body, headers=sign(body))

    def click(
        self, value: str, *, user: str, channel: str, thread_ts: str | None = None
    ) -> WebhookCall:
        """A click on a button midtier sent (``block_actions``, posted as a form)."""
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": self.ts(),
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        data = {
            "type": "block_actions",
            "user": {"id": user, "username": user, "name": user, "team_id": TEAM},
            "api_app_id": APP,
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "container": container,
            "trigger_id": f"{int(time.time())}.{next(self._ts)}.e4c5f8a1d2b3",
            "team": {"id": TEAM, "domain": "acme"},
            "channel": {"id": channel, "name": "directmessage"},
            "response_url": f"https://hooks.slack.com/actions/{TEAM}/1/abcdef",
            "actions": [
                {
                    "type": "button",
                    "block_id": "b1",
                    "action_id": "midtier-choice-1",
                    "text": {"type": "plain_text", "text": value, "emoji": True},
                    "value": value,
                    "action_ts": self.ts(),
                }
            ],
        }
        body = urlencode({"payload": json.dumps(data)}).encode()
        return WebhookCall(body=body, headers=sign(body, content_type=FORM))

    def sign_body(self, url: str, body: bytes) -> WebhookCall:
        return WebhookCall(body=body, headers=sign(body))

    def forged(self, call: WebhookCall) -> WebhookCall:
        stamp = int(call.headers["X-Slack-Request-Timestamp"])
        content_type = call.headers["Content-Type"]
        headers = sign(call.body, secret=WRONG_SECRET, ts=stamp, content_type=content_type)
        return WebhookCall(body=call.body, headers=headers, method=call.method)

    def replies(self, platform: FakePlatform) -> list[Reply]:
        out = []
        for index in self.accepted:
            sent = platform.calls[index].json
            where = sent["channel"] + (f":{sent['thread_ts']}" if "thread_ts" in sent else "")
            out.append(Reply(conversation=where, text=unescape(sent["text"]), call_index=index))
        return out
