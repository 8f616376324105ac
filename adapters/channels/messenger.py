"""Facebook Messenger: the Messenger Platform's webhooks in, the Send API out.

A Page's webhook batches events: every ``entry[]`` (one per Page and moment) holds
``messaging[]`` events, and all of them become activities, in order. Understood: messages
(text, a quick reply's payload, image / audio / video / file / sticker attachments, a shared
location) and postbacks (buttons, Get Started, the persistent menu). The Page's own echoes and
the delivery and read receipts are dropped; other kinds (reactions, referrals, opt-ins...)
are ignored and logged once.

The conversation is ``"<page id>:<psid>"`` (the Page-scoped id of the user); replies go to
``POST /{version}/me/messages`` with the Page access token in the Authorization header, as
``messaging_type: RESPONSE`` (within 24 hours of the user's last message; later ones are
refused by Meta and recorded as rejected, not retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field

from adapters.channels import meta, render
from connector.activity import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationAccount,
)
from connector.channels import ChannelRequest, ChannelResponse, IgnoredKinds
from connector.context import ChannelContext
from connector.errors import MalformedPayload
from connector.logs import redactor

TEXT_LIMIT = 2000
QUICK_REPLIES = 13
QUICK_TITLE = 20
QUICK_PAYLOAD = 1000
MEDIA = frozenset({"image", "audio", "video", "file", "sticker"})
RECEIPTS = frozenset({"delivery", "read"})


class MessengerSettings(meta.MetaSettings):
    """``channels.<name>`` of ``kind: messenger`` in midtier.yaml."""

    page_access_token: str = Field(min_length=1, description="the Page's access token")


class MessengerChannel:
    """A Facebook Page's Messenger conversations as a channel."""

    Settings = MessengerSettings

    def __init__(self, context: ChannelContext[MessengerSettings]) -> None:
        self.name = context.name
        self._settings = settings = context.settings
        self._http = context.http
        self._url = f"{settings.api_base}/{settings.api_version}/me/messages"
        self._ignored = IgnoredKinds(context.name)
        for secret in (settings.app_secret, settings.page_access_token, settings.verify_token):
            redactor.add(secret)

    async def verify(self, request: ChannelRequest) -> None:
        """``X-Hub-Signature-256`` over the raw body (:mod:`adapters.channels.meta`)."""
        meta.verify_signature(request, self._settings.app_secret)

    async def handshake(self, request: ChannelRequest) -> ChannelResponse | None:
        """The ``hub.challenge`` GET of a webhook subscription."""
        return meta.handshake(request, self._settings.verify_token)

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """Every user event of every entry, in order."""
        body = meta.Fields(request.json_object(), "body")
        if body.maybe_text("object") != "page":
            self._ignored(meta.label(body.data.get("object"), " object"))
            return []
        out: list[Activity] = []
        for entry in meta.each(body.items("entry"), "entry"):
            if "messaging" not in entry.data:
                self._ignored(
                    meta.label(next((k for k in entry.data if k not in ("id", "time")), ""))
                )
                continue
            for event in meta.each(entry.items("messaging"), f"{entry.where}.messaging"):
                activity = self._event(event)
                if activity is not None:
                    out.append(activity)
        return out

    def _event(self, event: meta.Fields) -> Activity | None:
        data = event.data
        message = event.sub("message")
        if message is not None and message.flag("is_echo"):
            return None  # what the Page itself sent
        if RECEIPTS & data.keys():
            return None
        if message is None and "postback" not in data:
            kind = next((k for k in data if k not in ("sender", "recipient", "timestamp")), "")
            self._ignored(meta.label(kind))
            return None
        sender = event.sub("sender")
        if sender is None:
            raise MalformedPayload(f"{event.where}.sender is missing")
        if "id" not in sender.data and "user_ref" in sender.data:
            self._ignored("chat plugin (user_ref)")  # no PSID to answer
            return None
        head = _Head(
            psid=sender.text("id"),
            page=_page_id(event),
            timestamp=event.time("timestamp"),
        )
        return self._message(head, message) if message is not None else self._postback(head, event)

    def _message(self, head: _Head, message: meta.Fields) -> Activity | None:
        text = message.maybe_text("text")
        value: dict[str, Any] | None = None
        quick = message.sub("quick_reply")
        if quick is not None:
            text, value = quick.text("payload"), quick.data  # the value the bot offered
        attachments: list[Attachment] = []
        entities: list[dict[str, Any]] = []
        for item in meta.each(message.items("attachments"), f"{message.where}.attachments"):
            kind = item.text("type")
            payload = item.sub("payload")
            coordinates = payload.sub("coordinates") if payload is not None else None
            url = payload.maybe_text("url") if payload is not None else None
            if kind == "location" and coordinates is not None:
                entities.append(meta.geo(coordinates.number("lat"), coordinates.number("long")))
            elif kind in MEDIA and url and url.startswith(("https://", "http://")):
                if all(a.content_url != url for a in attachments):  # a sticker comes twice
                    attachments.append(Attachment.model_validate(render.attachment_of(kind, url)))
            else:
                self._ignored(meta.label(kind, " attachment"))
        if not text and not attachments and not entities:
            self._ignored("empty message")
            return None
        return head.activity(
            self.name,
            message.text("mid"),
            text=text or None,
            value=value,
            attachments=attachments or None,
            entities=entities or None,
        )

    def _postback(self, head: _Head, event: meta.Fields) -> Activity | None:
        postback = meta.Fields(event.data["postback"], f"{event.where}.postback")
        payload = postback.maybe_text("payload")
        if not payload:
            # Meta gives the payload only to the app whose button it was.
            self._ignored("payload-less postback")
            return None
        # Older postbacks have no mid: the moment of the tap identifies it.
        mid = postback.maybe_text("mid") or f"postback-{head.psid}-{head.millis}"
        return head.activity(self.name, mid, text=payload, value=postback.data)

    async def send(self, activity: Activity) -> str:
        """Images, then the text with its choices as quick replies (they belong to the last
        message); a typing indicator for ``typing``. Returns the last message id."""
        if activity.type not in (ActivityTypes.MESSAGE, ActivityTypes.TYPING):
            return ""
        conversation = activity.conversation.id if activity.conversation else ""
        _, psid = meta.split_conversation(conversation, "<page id>:<psid>")
        recipient = {"id": psid}
        if activity.type == ActivityTypes.TYPING:
            await self._post({"recipient": recipient, "sender_action": "typing_on"}, "typing")
            return ""
        sent = ""
        for image in render.images(activity):
            attachment = {"type": "image", "payload": {"url": image.url}}
            sent = await self._send(recipient, {"attachment": attachment})
        message = _text_message(render.text_of(activity), render.choices(activity))
        if message is not None:
            sent = await self._send(recipient, message)
        return sent

    async def _send(self, recipient: dict[str, str], message: dict[str, Any]) -> str:
        body = {"recipient": recipient, "messaging_type": "RESPONSE", "message": message}
        answer = await self._post(body, "send")
        sent = answer.get("message_id") if isinstance(answer, dict) else None
        return sent if isinstance(sent, str) else ""

    async def _post(self, body: dict[str, Any], what: str) -> Any:
        return await meta.graph_post(
            self._http(), self._url, self._settings.page_access_token, body, f"messenger {what}"
        )


def _page_id(event: meta.Fields) -> str:
    recipient = event.sub("recipient")
    if recipient is None:
        raise MalformedPayload(f"{event.where}.recipient is missing")
    page = recipient.text("id")
    if not page.isdigit():
        raise MalformedPayload(f"{recipient.where}.id must be a Page id")
    return page


def _text_message(text: str, options: list[render.Choice]) -> dict[str, Any] | None:
    """Quick replies when they fit (text to attach them to, at most 13, payloads Meta
    keeps), else the choices as numbered text."""
    if not options:
        return {"text": render.cut(text, TEXT_LIMIT)} if text else None
    fits = len(options) <= QUICK_REPLIES and all(0 < len(c.value) <= QUICK_PAYLOAD for c in options)
    if not text or not fits:
        return {"text": meta.numbered_text(text, options, TEXT_LIMIT)}
    quick = [
        {"content_type": "text", "title": render.cut(c.title, QUICK_TITLE), "payload": c.value}
        for c in options
    ]
    return {"text": render.cut(text, TEXT_LIMIT), "quick_replies": quick}


@dataclass(frozen=True, slots=True)
class _Head:
    """Who, where and when of one event: what every activity of it carries."""

    psid: str
    page: str
    timestamp: datetime

    @property
    def millis(self) -> int:
        return int(self.timestamp.timestamp() * 1000)

    def activity(self, channel: str, mid: str, **content: Any) -> Activity:
        return Activity(
            type=ActivityTypes.MESSAGE,
            id=mid,
            timestamp=self.timestamp,
            channel_id=channel,
            from_=ChannelAccount(id=self.psid, role="user"),
            recipient=ChannelAccount(id=self.page, role="bot"),
            conversation=ConversationAccount(id=f"{self.page}:{self.psid}"),
            **content,
        )
