"""Slack's payloads: what midtier reads of them and what it writes.

In: an Events API envelope, a person's message event, a ``block_actions`` interaction, as
strict models. Slack signs the whole body, but a signed body is still read as untrusted:
every field midtier uses is typed here, and anything of the wrong type or shape is a
``MalformedPayload`` that names the field (never its value). Fields midtier does not read
are ignored, so that Slack adding fields breaks nothing.

Out: the body of a ``chat.postMessage``, in Block Kit when there are choices or images.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.channels import render
from connector.activity import Activity, Attachment
from connector.errors import MalformedPayload

# Slack ids (T…, C…, D…, U…, A…): no ":" in them, since conversation keys are joined with it.
ID = r"^[A-Za-z0-9_\-]{1,64}$"
# A message ``ts``: "seconds.micros", Slack's id of a message within its channel (ASCII
# digits: in pydantic's patterns \d takes any script's).
TS = r"^[0-9]{1,10}(?:\.[0-9]{1,9})?$"

TEXT_LIMIT = 40_000  # chat.postMessage truncates longer text
SECTION_LIMIT = 3_000  # a section block's text
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2_000
MAX_BUTTONS = 25  # elements of one actions block
MAX_IMAGES = 10
MAX_BLOCKS = 50
IMAGE_URL_LIMIT = 3_000
ALT_TEXT_LIMIT = 2_000
_LEADING_MENTION = re.compile(r"^\s*<@[A-Za-z0-9]+>")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$", re.ASCII)

M = TypeVar("M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Authorization(_Model):
    user_id: str | None = None
    is_bot: bool = False


class Envelope(_Model):
    """An ``event_callback`` body: one event and who it was delivered for."""

    type: str
    team_id: str | None = Field(default=None, pattern=ID)
    api_app_id: str | None = None
    event_id: str | None = None
    event: dict[str, Any]
    authorizations: list[Authorization] = Field(default_factory=list)

    @property
    def bot_user(self) -> str | None:
        """The app's bot user, whose mentions and own messages midtier leaves out."""
        for authorization in self.authorizations:
            if authorization.is_bot and authorization.user_id:
                return authorization.user_id
        return None


class File(_Model):
    name: str | None = None
    mimetype: str | None = None
    url_private: str | None = None


class Message(_Model):
    """A ``message`` or ``app_mention`` event from a person."""

    type: str
    subtype: str | None = None
    channel: str = Field(pattern=ID)
    user: str = Field(pattern=ID)
    text: str | None = None
    ts: str = Field(pattern=TS)
    thread_ts: str | None = Field(default=None, pattern=TS)
    channel_type: str | None = None
    team: str | None = Field(default=None, pattern=ID)
    files: list[File] = Field(default_factory=list)


class Named(_Model):
    id: str = Field(pattern=ID)
    name: str | None = None
    username: str | None = None
    team_id: str | None = Field(default=None, pattern=ID)


class Container(_Model):
    type: str | None = None
    channel_id: str | None = Field(default=None, pattern=ID)
    thread_ts: str | None = Field(default=None, pattern=TS)


class MessageRef(_Model):
    ts: str | None = Field(default=None, pattern=TS)
    thread_ts: str | None = Field(default=None, pattern=TS)


class Action(_Model):
    type: str
    action_id: str | None = None
    block_id: str | None = None
    value: str | None = None
    action_ts: str | None = Field(default=None, pattern=TS)


class BlockActions(_Model):
    """A click on an interactive element of a message (the buttons midtier sends)."""

    type: str
    team: Named | None = None
    user: Named
    api_app_id: str | None = None
    channel: Named | None = None
    container: Container | None = None
    message: MessageRef | None = None
    trigger_id: str | None = None
    actions: list[Action]

    @property
    def channel_id(self) -> str | None:
        if self.channel is not None:
            return self.channel.id
        return self.container.channel_id if self.container is not None else None

    @property
    def thread_ts(self) -> str | None:
        """The thread the clicked message is in (the thread its reply goes to)."""
        if self.container is not None and self.container.thread_ts:
            return self.container.thread_ts
        return self.message.thread_ts if self.message is not None else None


def read(model: type[M], data: Any, where: str) -> M:
    """``data`` as ``model``; ``MalformedPayload`` naming the first wrong field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"])
        where = f"{where}.{field}" if field else where
        raise MalformedPayload(f"{where}: {error['msg']}") from None


def timestamp(ts: str) -> datetime:
    """A Slack ``ts`` ("1610241741.000200", already checked against ``TS``) as a time."""
    return datetime.fromtimestamp(float(ts), UTC)


def message_body(activity: Activity) -> dict[str, Any] | None:
    """``text`` (always: it is the notification and the fallback) and, for choices and
    images, ``blocks``: sections of the text, image blocks, one actions block of buttons."""
    text = render.text_of(activity)
    options = render.choices(activity)
    images = [i for i in render.images(activity) if len(i.url) <= IMAGE_URL_LIMIT][:MAX_IMAGES]
    if options and not (
        len(options) <= MAX_BUTTONS and all(0 < len(o.value) <= BUTTON_VALUE_LIMIT for o in options)
    ):
        text, options = render.numbered(text, options), []  # the user answers with a number
    fallback = text or render.numbered("", options) or " ".join(i.name or "image" for i in images)
    if not fallback:
        return None
    body: dict[str, Any] = {"text": render.cut(escape(fallback), TEXT_LIMIT)}
    if not options and not images:
        return body
    room = MAX_BLOCKS - len(images) - (1 if options else 0)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in sections(render.cut(text, TEXT_LIMIT))[:room]
        if part.strip()
    ]
    blocks += [
        {
            "type": "image",
            "image_url": i.url,
            "alt_text": render.cut(i.name or "image", ALT_TEXT_LIMIT),
        }
        for i in images
    ]
    if options:
        buttons = [
            {
                "type": "button",
                "action_id": f"midtier-choice-{n}",
                "text": {"type": "plain_text", "text": render.cut(o.title, BUTTON_TEXT_LIMIT)},
                "value": o.value,
            }
            for n, o in enumerate(options, 1)
        ]
        blocks.append({"type": "actions", "elements": buttons})
    body["blocks"] = blocks
    return body


def conversation(team: str, channel: str, thread: str | None) -> str:
    """The channel conversation key: what a reply needs to be addressed."""
    return f"{team}:{channel}:{thread}" if thread else f"{team}:{channel}"


def plain(text: str, bot: str | None, *, mentioned: bool) -> str:
    """What the person wrote, as they see it: without the mention of the bot it is
    addressed to (an ``app_mention`` starts with it), and without Slack's escaping of
    ``&``, ``<`` and ``>``."""
    if bot:
        text = text.replace(f"<@{bot}>", "")
    elif mentioned:
        text = _LEADING_MENTION.sub("", text, count=1)
    return text.strip().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Slack reads ``<...>`` as mentions and links: what a bot or agent writes must not
    become ``<!channel>`` and notify everyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sections(text: str) -> list[str]:
    """``text`` escaped, in pieces that fit a section block, cut at a line or word."""
    out: list[str] = []
    while text:
        piece = text[:SECTION_LIMIT]
        while (over := len(escape(piece)) - SECTION_LIMIT) > 0:
            piece = piece[: len(piece) - over]
        if len(piece) < len(text):
            gap = max(piece.rfind("\n"), piece.rfind(" "))
            if gap > len(piece) // 2:
                piece = piece[: gap + 1]
        out.append(escape(piece))
        text = text[len(piece) :]
    return out


def attachments(files: list[File]) -> list[Attachment] | None:
    """Shared files as Bot Framework attachments, of their own media type. A file's
    ``url_private`` is fetched with the bot token (``Authorization: Bearer``); files
    without one (hidden by the workspace's plan, deleted) are left out."""
    out = []
    for file in files:
        url = file.url_private
        if not url or not url.startswith("https://"):
            continue
        mimetype = file.mimetype or ""
        known = _MEDIA_TYPE.match(mimetype) is not None
        data = render.attachment_of(mimetype.split("/")[0] if known else "file", url, file.name)
        if known:
            data["contentType"] = mimetype
        out.append(Attachment.model_validate(data))
    return out or None
