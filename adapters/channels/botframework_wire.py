"""The Bot Framework channel's activities on the wire (see :mod:`.botframework`).

**In.** What Azure posts is untrusted: a missing or empty ``channelId``, ``serviceUrl``,
``id`` or account id is a ``MalformedPayload`` (400) naming the field. The activity keeps
what it came with; the conversation key becomes ``"<channelId>:<conversation.id>"`` and the
``serviceUrl`` moves into ``channelData.address``, where replies find it.

**Out.** A reply is the body the Bot Connector takes: from the bot the activity was sent to,
to the user, in the conversation (with Teams' tenant), the text cut to what Teams shows, and
Teams' limits on suggested actions kept by numbering the choices in the text.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from adapters.channels import render
from connector.activity import Activity, ActivityTypes, ConversationAccount
from connector.errors import MalformedPayload

# Teams shows a message of up to about 28 KB; the text is cut well below that.
TEXT_LIMIT = 24_000
# Teams shows at most three suggested actions, and none on a message with attachments.
TEAMS_MAX_SUGGESTED = 3
_PASSED = ("attachments", "attachmentLayout", "suggestedActions", "textFormat", "speak",
           "inputHint", "summary", "entities", "locale", "value")  # fmt: skip


def required_text(data: dict[str, Any], key: str) -> str:
    """``data[key]``, a non-empty string (MalformedPayload otherwise)."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"activity {key} must be a non-empty string")
    return value


def _account(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise MalformedPayload(f"activity {key}.id must be a non-empty string")
    return value


def inbound_activity(data: dict[str, Any], channel: str) -> Activity:
    """The activity Azure posted, as channel ``channel`` hands it to the core."""
    channel_id = required_text(data, "channelId")
    service_url = required_text(data, "serviceUrl")
    if not service_url.startswith(("https://", "http://")):
        raise MalformedPayload("activity serviceUrl must be an http(s) URL")
    conversation = _account(data, "conversation")
    bot = _account(data, "recipient")
    _account(data, "from")
    activity_id = required_text(data, "id")
    address: dict[str, Any] = {
        "serviceUrl": service_url,
        "channelId": channel_id,
        "conversationId": conversation["id"],
        "bot": {"id": bot["id"], "name": bot.get("name")},
        "replyToId": activity_id,
    }
    tenant = conversation.get("tenantId") or _tenant(data.get("channelData"))
    if isinstance(tenant, str) and tenant:
        address["tenantId"] = tenant  # Teams refuses some sends without it
    channel_data = data.get("channelData")
    if channel_data is not None and not isinstance(channel_data, dict):
        raise MalformedPayload("activity channelData must be an object")
    try:
        activity = Activity.from_wire(data)
    except ValidationError as exc:  # its own text would quote the input at length
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedPayload(f"not a Bot Framework activity ({where}: {first['msg']})") from None
    activity.channel_id = channel
    activity.service_url = None  # kept in the address, for replies; providers have their own
    activity.conversation = ConversationAccount.model_validate(
        {**conversation, "id": f"{channel_id}:{conversation['id']}"}
    )
    activity.channel_data = {**(channel_data or {}), "address": address}
    return activity


def reply_body(activity: Activity, address: dict[str, Any]) -> dict[str, Any]:
    """The Connector's body for ``activity``, sent in the conversation at ``address``."""
    wire = activity.to_wire()
    found = address.get("bot")
    bot: dict[str, Any] = found if isinstance(found, dict) else {}
    conversation: dict[str, Any] = {"id": address.get("conversationId")}
    if address.get("tenantId"):
        conversation["tenantId"] = address["tenantId"]
    body: dict[str, Any] = {
        "type": activity.type,
        "from": {k: v for k, v in bot.items() if k in ("id", "name") and v},
        "recipient": {"id": activity.recipient.id if activity.recipient else ""},
        "conversation": conversation,
    }
    if address.get("replyToId"):
        body["replyToId"] = address["replyToId"]
    if activity.type == ActivityTypes.TYPING:
        return body
    body.update({k: wire[k] for k in _PASSED if k in wire})
    if wire.get("text"):
        body["text"] = render.cut(wire["text"], TEXT_LIMIT)
    if address.get("channelId") == "msteams":
        _fit_teams(activity, body)
    extra = {k: v for k, v in (wire.get("channelData") or {}).items() if k != "midtier"}
    if extra:
        body["channelData"] = extra  # e.g. Teams' notification.alert, set by a bot
    return body


def _fit_teams(activity: Activity, body: dict[str, Any]) -> None:
    """Teams shows at most three suggested actions and none beside attachments: then the
    choices go into the text, numbered (the core maps a reply "2" to the second)."""
    actions = (body.get("suggestedActions") or {}).get("actions")
    if not isinstance(actions, list) or not actions:
        return
    if len(actions) <= TEAMS_MAX_SUGGESTED and not body.get("attachments"):
        return
    suggested = render.choices(activity.model_copy(update={"attachments": None}))
    del body["suggestedActions"]
    body["text"] = render.cut(render.numbered(body.get("text", ""), suggested), TEXT_LIMIT)


def _tenant(channel_data: Any) -> Any:
    tenant = channel_data.get("tenant") if isinstance(channel_data, dict) else None
    return tenant.get("id") if isinstance(tenant, dict) else None
