"""WhatsApp Cloud API: the ``messages`` webhook in, ``POST /{phone_number_id}/messages`` out.

Every message of every ``messages`` change of every entry becomes an activity, in order:
text, media (image, audio, video, document, sticker), replies to interactive buttons and
lists, template quick-reply buttons, locations. The user's name comes from ``contacts[]``.

**Media.** WhatsApp gives a media id, not a URL: fetching the file takes a Graph API call
with the access token, which must not leave midtier. So a media attachment carries the id
(``name`` and ``content.whatsapp_media_id``, with the MIME type) and no ``contentUrl``.

**Receipts.** ``statuses[]`` are dropped; a ``failed`` one, the only news of a message that
was accepted and then not delivered, is logged once with its error code.

The conversation is ``"<phone_number_id>:<wa_id>"``: replies go from the number that
received the message. ``channelData.address`` carries the message id: WhatsApp's typing
indicator names the message being answered (and marks it as read).
"""

from __future__ import annotations

import logging
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
from connector.claims import phone_identity
from connector.context import ChannelContext
from connector.errors import MalformedPayload
from connector.logs import redactor

log = logging.getLogger("midtier.whatsapp")

TEXT_LIMIT = 4096
BUTTONS = 3
BUTTON_BODY = 1024
BUTTON_TITLE = 20
BUTTON_ID = 256
ROWS = 10
ROW_TITLE = 24
ROW_ID = 200
MEDIA = frozenset({"image", "audio", "video", "document", "sticker"})
REPLIES = frozenset({"button_reply", "list_reply"})
TEXT = {"type": "text"}
_REMEMBERED = 1024  # failed status ids already logged (Meta retries webhooks)


class WhatsAppSettings(meta.MetaSettings):
    """``channels.<name>`` of ``kind: whatsapp`` in midtier.yaml."""

    access_token: str = Field(min_length=1, description="a system user's access token")
    phone_number_id: str | None = Field(
        default=None,
        pattern=r"^\d{1,32}$",
        description="take only messages to this number (default: every number of the app)",
    )
    list_button: str = Field(
        default="Choose", min_length=1, max_length=20, description="opens a list of choices"
    )


class WhatsAppChannel:
    """A WhatsApp Business phone number's conversations as a channel."""

    Settings = WhatsAppSettings

    def __init__(self, context: ChannelContext[WhatsAppSettings]) -> None:
        self.name = context.name
        self._settings = settings = context.settings
        self._http = context.http
        self._base = f"{settings.api_base}/{settings.api_version}"
        self._ignored = IgnoredKinds(context.name)
        self._failed: dict[str, None] = {}
        for secret in (settings.app_secret, settings.access_token, settings.verify_token):
            redactor.add(secret)

    async def verify(self, request: ChannelRequest) -> None:
        """``X-Hub-Signature-256`` over the raw body (:mod:`adapters.channels.meta`)."""
        meta.verify_signature(request, self._settings.app_secret)

    async def handshake(self, request: ChannelRequest) -> ChannelResponse | None:
        """The ``hub.challenge`` GET of a webhook subscription."""
        return meta.handshake(request, self._settings.verify_token)

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """Every message of every change of every entry, in order."""
        body = meta.Fields(request.json_object(), "body")
        if body.maybe_text("object") != "whatsapp_business_account":
            self._ignored(meta.label(body.data.get("object"), " object"))
            return []
        out: list[Activity] = []
        for entry in meta.each(body.items("entry"), "entry"):
            for change in meta.each(entry.items("changes"), f"{entry.where}.changes"):
                if change.maybe_text("field") != "messages":
                    self._ignored(meta.label(change.data.get("field"), " field"))
                    continue
                value = change.sub("value")
                if value is None:
                    raise MalformedPayload(f"{change.where}.value is missing")
                out += self._value(value)
        return out

    def _value(self, value: meta.Fields) -> list[Activity]:
        for status in meta.each(value.items("statuses"), f"{value.where}.statuses"):
            self._status(status)
        for error in meta.each(value.items("errors"), f"{value.where}.errors"):
            code = error.data.get("code")
            self._ignored(f"error (code {code})" if isinstance(code, int) else "error")
        messages = meta.each(value.items("messages"), f"{value.where}.messages")
        if not messages:
            return []
        metadata = value.sub("metadata")
        if metadata is None:
            raise MalformedPayload(f"{value.where}.metadata is missing")
        number = metadata.text("phone_number_id")
        if not number.isdigit():
            raise MalformedPayload(f"{metadata.where}.phone_number_id must be digits")
        if self._settings.phone_number_id not in (None, number):
            self._ignored("other phone numbers'")
            return []
        names: dict[str, str] = {}
        for contact in meta.each(value.items("contacts"), f"{value.where}.contacts"):
            profile = contact.sub("profile")
            wa_id = contact.maybe_text("wa_id")
            name = profile.maybe_text("name") if profile is not None else None
            if wa_id and name:
                names[wa_id] = name
        out = []
        for message in messages:
            activity = self._message(message, number, names)
            if activity is not None:
                out.append(activity)
        return out

    def _message(self, message: meta.Fields, number: str, names: dict[str, str]) -> Activity | None:
        wa_id, wamid = message.text("from"), message.text("id")
        timestamp = message.time("timestamp")
        content = self._content(message.text("type"), message)
        if content is None:
            return None
        return Activity(
            type=ActivityTypes.MESSAGE,
            id=wamid,
            timestamp=timestamp,
            channel_id=self.name,
            from_=ChannelAccount(id=wa_id, name=names.get(wa_id), role="user"),
            recipient=ChannelAccount(id=number, role="bot"),
            conversation=ConversationAccount(id=f"{number}:{wa_id}"),
            # What a typing indicator needs: the newest message's id (see the docstring); and
            # the sender's number, which WhatsApp proves (connector.claims).
            channel_data={
                "address": {"message_id": wamid},
                "identities": [i for i in (phone_identity(wa_id),) if i],
            },
            **content,
        )

    def _content(self, kind: str, message: meta.Fields) -> dict[str, Any] | None:
        if kind not in ("text", "interactive", "button", "location") and kind not in MEDIA:
            self._ignored(meta.label(kind))  # reactions, contacts, orders, system...
            return None
        part = message.sub(kind)
        if part is None:
            raise MalformedPayload(f"{message.where}.{kind} is missing")
        if kind == "text":
            return {"text": part.text("body")}
        if kind in MEDIA:
            return {"text": part.maybe_text("caption"), "attachments": [_media(kind, part)]}
        if kind == "interactive":
            reply_kind = part.maybe_text("type") or ""
            reply = part.sub(reply_kind) if reply_kind in REPLIES else None
            if reply is None:
                self._ignored(meta.label(reply_kind, " reply"))
                return None
            return {"text": reply.text("id"), "value": part.data}  # the id is the choice's value
        if kind == "button":  # a template's quick-reply button
            return {"text": part.maybe_text("payload") or part.text("text"), "value": part.data}
        extra = {k: part.data[k] for k in ("name", "address") if isinstance(part.data.get(k), str)}
        location = meta.geo(part.number("latitude"), part.number("longitude"))
        return {"entities": [{**location, **extra}]}

    def _status(self, status: meta.Fields) -> None:
        if status.maybe_text("status") != "failed":
            return
        status_id = status.maybe_text("id") or ""
        if status_id in self._failed:
            return
        self._failed[status_id] = None
        if len(self._failed) > _REMEMBERED:
            del self._failed[next(iter(self._failed))]
        errors = [e for e in status.items("errors") if isinstance(e, dict)]
        code = errors[0].get("code") if errors else None
        title = errors[0].get("title") if errors else None
        log.warning(
            "channel %s: WhatsApp did not deliver message %s: error %s %s",
            self.name,
            status_id[:128],
            code if isinstance(code, int) else "?",
            render.cut(title, 160) if isinstance(title, str) else "",
            extra={"event": "delivery_failed", "channel": self.name},
        )

    async def send(self, activity: Activity) -> str:
        """Images, then the text with its choices as interactive buttons or a list; a typing
        indicator for ``typing``. Returns the last message id."""
        if activity.type not in (ActivityTypes.MESSAGE, ActivityTypes.TYPING):
            return ""
        conversation = activity.conversation.id if activity.conversation else ""
        number, wa_id = meta.split_conversation(conversation, "<phone_number_id>:<wa_id>")
        url = f"{self._base}/{number}/messages"
        if activity.type == ActivityTypes.TYPING:
            replied_to = _last_message_id(activity)
            if replied_to:
                typing = {"status": "read", "message_id": replied_to, "typing_indicator": TEXT}
                await self._post(url, {"messaging_product": "whatsapp", **typing}, "typing")
            return ""
        sent = ""
        for image in render.images(activity):
            sent = await self._send(url, wa_id, {"type": "image", "image": {"link": image.url}})
        message = _text_message(
            render.text_of(activity), render.choices(activity), self._settings.list_button
        )
        if message is not None:
            sent = await self._send(url, wa_id, message)
        return sent

    async def _send(self, url: str, wa_id: str, message: dict[str, Any]) -> str:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id}
        answer = await self._post(url, {**body, **message}, "send")
        messages = answer.get("messages") if isinstance(answer, dict) else None
        first = messages[0] if isinstance(messages, list) and messages else None
        sent = first.get("id") if isinstance(first, dict) else None
        return sent if isinstance(sent, str) else ""

    async def _post(self, url: str, body: dict[str, Any], what: str) -> Any:
        return await meta.graph_post(
            self._http(), url, self._settings.access_token, body, f"whatsapp {what}"
        )


def _media(kind: str, part: meta.Fields) -> Attachment:
    media_id = part.text("id")
    mime = part.maybe_text("mime_type")
    content: dict[str, Any] = {"whatsapp_media_id": media_id}
    for key in ("mime_type", "filename", "sha256"):
        if isinstance(part.data.get(key), str):
            content[key] = part.data[key]
    plausible = mime is not None and mime.count("/") == 1 and len(mime) < 128 and mime.isascii()
    content_type = mime if plausible and mime else render.attachment_of(kind, "")["contentType"]
    return Attachment(content_type=content_type, name=media_id, content=content)


def _last_message_id(activity: Activity) -> str | None:
    stamp = (activity.channel_data or {}).get("midtier")
    address = stamp.get("address") if isinstance(stamp, dict) else None
    found = address.get("message_id") if isinstance(address, dict) else None
    return found if isinstance(found, str) and found else None


def _text_message(text: str, options: list[render.Choice], label: str) -> dict[str, Any] | None:
    """Reply buttons for 1-3 choices, a list for up to 10, else numbered text. Both need a
    body, distinct values, and values within WhatsApp's id limits (they come back as is)."""
    if not options:
        return _text(render.cut(text, TEXT_LIMIT)) if text else None
    values = [c.value for c in options]
    titles = [render.cut(c.title, BUTTON_TITLE) for c in options]
    usable = bool(text) and all(values) and len(set(values)) == len(values)
    longest = max(map(len, values))
    buttons_fit = len(options) <= BUTTONS and len(text) <= BUTTON_BODY and longest <= BUTTON_ID
    if usable and buttons_fit and len(set(titles)) == len(titles):  # titles must differ too
        buttons = [
            {"type": "reply", "reply": {"id": c.value, "title": title}}
            for c, title in zip(options, titles, strict=True)
        ]
        return _interactive("button", text, {"buttons": buttons})
    if usable and len(options) <= ROWS and len(text) <= TEXT_LIMIT and longest <= ROW_ID:
        rows = [{"id": c.value, "title": render.cut(c.title, ROW_TITLE)} for c in options]
        return _interactive("list", text, {"button": label, "sections": [{"rows": rows}]})
    return _text(meta.numbered_text(text, options, TEXT_LIMIT))


def _text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body, "preview_url": False}}


def _interactive(kind: str, text: str, action: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": text}, "action": action},
    }
