"""Slack: the Events API and button clicks in, ``chat.postMessage`` out (PROTOCOLS.md §4).

Slack posts to one Request URL, ``/channels/<name>``: events as JSON ``event_callback``
envelopes (and the ``url_verification`` handshake), button clicks as a form whose
``payload`` field holds a ``block_actions`` JSON object. Both are signed alike:
``X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:{ts}:{raw body}")>`` with
``X-Slack-Request-Timestamp`` no more than five minutes off.

A conversation is ``<team>:<channel>``, or ``<team>:<channel>:<thread ts>`` for a thread
(with ``reply_in_thread``, every message outside a direct message starts its own thread).
A message is known by ``<channel>:<ts>``, Slack's own identity of a message, rather than
by the envelope's ``event_id``: an app subscribed to ``message.*`` and ``app_mention`` gets
each mention twice, under two event ids, and must answer it once; Slack's retries
(``X-Slack-Retry-Num``) repeat the same message and are recorded once too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.channels import platform_api
from adapters.channels.slack_payloads import (
    BlockActions,
    Envelope,
    Message,
    attachments,
    conversation,
    message_body,
    plain,
    read,
    timestamp,
)
from connector.activity import Activity, ActivityTypes, ChannelAccount, ConversationAccount, now
from connector.channels import ChannelRequest, ChannelResponse, IgnoredKinds
from connector.context import ChannelContext
from connector.errors import AuthError, ChannelError, DeliveryRejected, MalformedPayload
from connector.logs import redactor
from connector.payloads import loads, parse_content_type

log = logging.getLogger("midtier.slack")

REPLAY_WINDOW_S = 300
# Slack's own trouble: worth another try later. Any other error is the message's or the
# app's (channel_not_found, not_in_channel, is_archived, invalid_auth...): it cannot pass.
RETRIED = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Message subtypes that a person sent; the others are edits, deletions, joins, bots.
PEOPLES = frozenset({"file_share", "thread_broadcast"})


class SlackSettings(BaseModel):
    """``channels.<name>`` of ``kind: slack`` in midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    signing_secret: str = Field(min_length=1, description="the app's Signing Secret: ${ENV}")
    bot_token: str = Field(pattern=r"^xoxb-", description="the Bot User OAuth Token: ${ENV}")
    api_base: str = Field(default="https://slack.com/api", pattern=r"^https?://")
    reply_in_thread: bool = Field(
        default=False, description="answer in the thread of the user's message"
    )


class SlackChannel:
    """A Slack app's bot: verifies and reads what Slack posts, answers with chat.postMessage."""

    Settings = SlackSettings

    def __init__(self, context: ChannelContext[SlackSettings]) -> None:
        settings = context.settings
        self.name = context.name
        self._secret = settings.signing_secret
        self._token = settings.bot_token
        self._post_url = settings.api_base.rstrip("/") + "/chat.postMessage"
        self._in_thread = settings.reply_in_thread
        self._http = context.http
        self._ignored = IgnoredKinds(context.name)
        self._headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/json; charset=utf-8",  # else Slack warns
        }
        self.clock: Callable[[], float] = time.time  # what "now" is for the replay window

    async def start(self) -> None:
        """Keep the secrets out of every log line."""
        redactor.add(self._secret)
        redactor.add(self._token)

    # ------------------------------------------------------------------ inbound

    async def verify(self, request: ChannelRequest) -> None:
        """Slack's v0 signature over the raw body, within the five-minute replay window."""
        ts = request.header("X-Slack-Request-Timestamp")
        signature = request.header("X-Slack-Signature")
        if not ts or not signature:
            raise AuthError("X-Slack-Signature and X-Slack-Request-Timestamp are required")
        if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
            raise AuthError("X-Slack-Request-Timestamp is not a Unix time")
        if abs(self.clock() - int(ts)) > REPLAY_WINDOW_S:
            raise AuthError("X-Slack-Request-Timestamp is more than 5 minutes off")
        base = b"v0:" + ts.encode() + b":" + request.body
        digest = hmac.new(self._secret.encode(), base, hashlib.sha256).hexdigest()
        expected = b"v0=" + digest.encode()
        if not signature.isascii() or not hmac.compare_digest(expected, signature.encode()):
            raise AuthError("X-Slack-Signature does not match")

    async def handshake(self, request: ChannelRequest) -> ChannelResponse | None:
        """The signed ``url_verification`` POST Slack makes when the Request URL is set:
        answered with its challenge."""
        if request.method != "POST" or b"url_verification" not in request.body:
            return None
        if parse_content_type(request.content_type or None).is_form:
            return None
        data = request.json_object()
        if data.get("type") != "url_verification":
            return None
        challenge = data.get("challenge")
        if not isinstance(challenge, str) or not 0 < len(challenge) <= 1024:
            raise MalformedPayload("url_verification without a challenge")
        return ChannelResponse.of_text(challenge)

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """A person's message (or a click on one of midtier's buttons) as an activity."""
        if parse_content_type(request.content_type or None).is_form:
            return self._interaction(request.form())
        data = request.json_object()
        kind = data.get("type")
        if kind == "event_callback":
            return self._event(read(Envelope, data, "body"))
        if not isinstance(kind, str):
            raise MalformedPayload("body has no type")
        if kind == "app_rate_limited":
            # Slack drops the app's events for the rest of that minute: worth knowing.
            log.warning("Slack is dropping events of channel %s (over 30,000 an hour)", self.name)
        elif kind != "url_verification":  # (answered by handshake)
            self._ignored(kind)
        return []

    async def acknowledge(
        self, request: ChannelRequest, activities: list[Activity]
    ) -> ChannelResponse:
        """A plain, empty 200: Slack reads nothing in it (a body to a click could be taken
        for a reply), its retries included."""
        return ChannelResponse(body=b"", content_type="text/plain")

    def _event(self, envelope: Envelope) -> list[Activity]:
        event = envelope.event
        kind, subtype = event.get("type"), event.get("subtype")
        if not isinstance(kind, str) or not isinstance(subtype, str | None):
            raise MalformedPayload("event.type and event.subtype must be strings")
        if kind not in ("message", "app_mention"):
            self._ignored(kind)
            return []
        if event.get("bot_id") is not None or subtype == "bot_message":
            return []  # our own replies coming back, or another app's
        if subtype is not None and subtype not in PEOPLES:
            self._ignored(f"{kind}.{subtype}")  # edits, deletions, joins...
            return []
        message = read(Message, event, "event")
        bot = envelope.bot_user
        if message.user == bot:
            return []
        team = envelope.team_id or message.team
        if team is None:
            raise MalformedPayload("body.team_id is missing")
        thread = message.thread_ts
        direct = message.channel_type == "im"  # app_mention never comes from a direct message
        if thread is None and self._in_thread and not direct:
            thread = message.ts  # the user's message starts the thread of the answer
        return [
            Activity(
                type=ActivityTypes.MESSAGE,
                id=f"{message.channel}:{message.ts}",
                timestamp=timestamp(message.ts),
                channel_id=self.name,
                from_=ChannelAccount(id=message.user, role="user"),
                recipient=ChannelAccount(id=bot or envelope.api_app_id or "slack", role="bot"),
                conversation=ConversationAccount(
                    id=conversation(team, message.channel, thread), is_group=not direct
                ),
                text=plain(message.text or "", bot, mentioned=kind == "app_mention"),
                attachments=attachments(message.files),
            )
        ]

    def _interaction(self, form: dict[str, str]) -> list[Activity]:
        raw = form.get("payload")
        if raw is None:
            if "command" in form or "ssl_check" in form:
                self._ignored("slash command")
                return []
            raise MalformedPayload("the form has no payload field")
        data = loads(raw, what="payload")
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise MalformedPayload("payload must be a JSON object with a type")
        if data["type"] != "block_actions":
            self._ignored(data["type"])  # shortcuts, modals: midtier opens none
            return []
        payload = read(BlockActions, data, "payload")
        channel = payload.channel_id
        team = payload.team.id if payload.team is not None else payload.user.team_id
        if channel is None or team is None:
            self._ignored("block_actions outside a message")  # App Home, modals
            return []
        where = conversation(team, channel, payload.thread_ts)
        out: list[Activity] = []
        for action in payload.actions:
            if action.type != "button" or action.value is None:
                self._ignored(f"block_actions.{action.type}")
                continue
            key = [part for part in (payload.trigger_id, action.action_ts) if part]
            if not key:
                raise MalformedPayload("payload has neither trigger_id nor action_ts")
            user = payload.user
            out.append(
                Activity(
                    type=ActivityTypes.MESSAGE,
                    id=":".join(key),
                    timestamp=timestamp(action.action_ts) if action.action_ts else now(),
                    channel_id=self.name,
                    from_=ChannelAccount(id=user.id, name=user.name or user.username, role="user"),
                    recipient=ChannelAccount(id=payload.api_app_id or "slack", role="bot"),
                    conversation=ConversationAccount(id=where),
                    # The bot gets back the value it offered; response_url stays here.
                    text=action.value,
                    value={
                        "action_id": action.action_id,
                        "block_id": action.block_id,
                        "value": action.value,
                    },
                )
            )
        return out

    # ------------------------------------------------------------------ outbound

    async def send(self, activity: Activity) -> str:
        """``chat.postMessage`` to the conversation's channel (and thread); Slack's ``ts``.

        Slack shows no typing indicator for Events API apps: typing is not sent.
        """
        if activity.type != ActivityTypes.MESSAGE:
            return ""
        channel, thread = _address(activity)
        body = message_body(activity)
        if body is None:
            return ""  # nothing Slack could show
        body["channel"] = channel
        if thread is not None:
            body["thread_ts"] = thread
        answer = await platform_api.call(
            self._http(),
            "POST",
            self._post_url,
            what="chat.postMessage",
            json_body=body,
            headers=self._headers,
            classify=classify,
        )
        if not isinstance(answer, dict):
            raise ChannelError("chat.postMessage: the answer is not Slack's")
        if answer.get("ok") is not True:
            raise classify(200, answer) or DeliveryRejected("chat.postMessage: not ok")
        ts = answer.get("ts")
        return ts if isinstance(ts, str) else ""


def classify(status: int, body: Any) -> ChannelError | None:
    """Slack's ``{"ok": false, "error": ...}`` (HTTP 200 as a rule) in the outbox's terms;
    None leaves a bare HTTP status to ``platform_api``'s mapping (429 and 5xx retried)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, str):
        return None
    reason = f"chat.postMessage: {platform_api.describe(error, 100)}"
    if error in RETRIED:
        return ChannelError(reason)
    if status < 300 or (status < 500 and status not in platform_api.RETRYABLE):
        return DeliveryRejected(reason)
    return None


def _address(activity: Activity) -> tuple[str, str | None]:
    """The channel and thread of a conversation id this adapter made."""
    key = activity.conversation.id if activity.conversation else ""
    parts = key.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise DeliveryRejected("the conversation is not a Slack conversation")
    return parts[1], parts[2] if len(parts) == 3 else None


__all__ = ["SlackChannel", "SlackSettings", "classify"]
