"""Fast conversion between midtier's pydantic Activity and botbuilder-schema's Activity.

Objects filled into copies of each class's blank instance dict, and attribute reads driven
by each msrest class's ``_attribute_map`` (a web chat message in about 3.5 us, a text reply
out in about 4 us before its validation, where msrest's ``serialize()`` / ``deserialize()``
take 120-160 us), so bots get real schema objects, equal to what botbuilder's constructors
build, and nothing on the hot path goes through msrest's serializer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

from botbuilder import schema
from botbuilder.schema import Activity as BfActivity
from botbuilder.schema import Attachment as BfAttachment
from botbuilder.schema import ChannelAccount as BfAccount
from botbuilder.schema import ConversationAccount as BfConversation
from botbuilder.schema import ResourceResponse
from msrest.serialization import Model
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from connector.activity import Activity, ChannelAccount, ConversationAccount

_LEAVES = frozenset({str, int, float, bool, datetime, dict})


@cache
def _spec(cls: Any) -> dict[str, tuple[str, str]]:
    """Wire key, camelCase and Python name -> (attribute, msrest type) of a botbuilder class."""
    spec: dict[str, tuple[str, str]] = {}
    for attr, desc in cls._attribute_map.items():
        if desc["key"]:
            spec[attr] = spec[to_camel(attr)] = spec[desc["key"]] = (attr, desc["type"])
    return spec


def _keys_out(cls: Any) -> dict[str, str]:
    """Attribute -> wire key of a botbuilder class, kept in ``_KEYS_OUT`` once read."""
    # botbuilder-python spells ConversationAccount.tenantId "tenantID"; the protocol does not.
    fix = {"tenantID": "tenantId"}
    keys = _KEYS_OUT[cls] = {
        attr: fix.get(desc["key"], desc["key"])
        for attr, desc in cls._attribute_map.items()
        if desc["key"]
    }
    return keys


# A plain dict, not functools.cache: looked up for every model a reply holds.
_KEYS_OUT: dict[Any, dict[str, str]] = {}


def _items(source: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(source, BaseModel):  # fields by Python name, then extras as given
        yield from source.__dict__.items()
        if source.__pydantic_extra__:
            yield from source.__pydantic_extra__.items()
    else:
        yield from source.items()


def _value_in(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind[0] == "[":
        return [_value_in(kind[1:-1], v) for v in value] if isinstance(value, list) else value
    if kind == "iso-8601":
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    cls = getattr(schema, kind, None) if kind[0].isupper() else None
    return _build(cls, value) if cls is not None else value


def _build(cls: Any, source: Any) -> Any:
    """A botbuilder object from one of ours or a wire dict; unknown keys kept aside."""
    if not isinstance(source, (BaseModel, Mapping)):
        return source  # None, or already a botbuilder object
    out = cls()
    spec = _spec(cls)
    for key, value in _items(source):
        found = spec.get(key)
        if found is None:
            out.additional_properties[key] = value
        elif value is not None:
            setattr(out, found[0], _value_in(found[1], value))
    return out


def plain(obj: Any) -> Any:
    """JSON-ready data from a botbuilder object, by attribute reads (no msrest Serializer).

    Lists are walked; dicts are taken as already plain; enums become their values.
    """
    kind: Any = type(obj)
    if kind in _LEAVES:
        return obj
    keys = _KEYS_OUT.get(kind)
    if keys is None:
        if isinstance(obj, Model):
            keys = _keys_out(kind)
        elif kind is list:
            return [plain(item) for item in obj]
        else:
            return obj._value_ if isinstance(obj, Enum) else obj
    # A loop, not a comprehension: a third cheaper for models of mostly empty attributes.
    out = {}
    for attr, value in obj.__dict__.items():
        if value is not None and (key := keys.get(attr)):
            out[key] = value if type(value) in _LEAVES else plain(value)
    extra = obj.additional_properties
    if extra:
        for key, value in extra.items():
            out.setdefault(key, plain(value))
    return out


# Typed fields of our Activity that the constructor below does not set.
_TYPED = [
    (f, to_camel(f))
    for f in (
        "text_format",
        "input_hint",
        "speak",
        "summary",
        "code",
        "local_timestamp",
        "local_timezone",
        "entities",
        "suggested_actions",
        "relates_to",
    )
]
_TYPED_NAMES = frozenset(f for f, _ in _TYPED)


def _blank(cls: Any) -> dict[str, Any]:
    """The attributes of a ``cls()``, in its order, all None (botbuilder's defaults)."""
    return dict.fromkeys(cls().__dict__)


# Copied and filled in instead of calling the constructors: msrest's ``Model.__init__`` and
# botbuilder's keyword constructors set every attribute one by one (half the cost of a turn's
# conversion in). ``additional_properties`` is given a dict of its own each time.
_ACTIVITY = _blank(BfActivity)
_ACCOUNT = _blank(BfAccount)
_CONVERSATION = _blank(BfConversation)
_RESPONSE = _blank(ResourceResponse)


def _instance(cls: Any, fields: dict[str, Any]) -> Any:
    out = object.__new__(cls)
    out.__dict__ = fields
    return out


def account(account_id: str, role: str) -> Any:
    """``ChannelAccount(id=account_id, role=role)``, built as ``to_botbuilder`` builds one."""
    fields = _ACCOUNT.copy()
    fields["additional_properties"] = {}
    fields["id"] = account_id
    fields["role"] = role
    return _instance(BfAccount, fields)


def text_message(text: str, input_hint: Any, speak: str | None) -> Any:
    """``Activity(text=text, input_hint=input_hint, speak=speak)``, as ``send_activity`` makes."""
    fields = _ACTIVITY.copy()
    fields["additional_properties"] = {}
    fields["text"] = text
    fields["input_hint"] = input_hint
    fields["speak"] = speak
    return _instance(BfActivity, fields)


def resource_response(resource_id: str) -> Any:
    """``ResourceResponse(id=resource_id)``: what ``send_activities`` answers for each one."""
    fields = _RESPONSE.copy()
    fields["additional_properties"] = {}
    fields["id"] = resource_id
    return _instance(ResourceResponse, fields)


def _account(cls: Any, account: ChannelAccount | ConversationAccount | None) -> Any:
    """``_build`` of an account, field by field when it has nothing beyond its typed fields
    (about a third of the cost: accounts cross on every turn)."""
    if account is None or account.__pydantic_extra__:
        return _build(cls, account)
    if isinstance(account, ConversationAccount):
        fields = _CONVERSATION.copy()
        fields["is_group"] = account.is_group
    else:
        fields = _ACCOUNT.copy()
        fields["role"] = account.role
    fields["additional_properties"] = {}
    fields["id"] = account.id
    fields["name"] = account.name
    return _instance(cls, fields)


def to_botbuilder(activity: Activity) -> Any:
    """Our Activity as a ``botbuilder.schema.Activity``; unknown fields ride along unread."""
    attachments = activity.attachments
    fields = _ACTIVITY.copy()
    fields["additional_properties"] = {}
    fields["type"] = activity.type
    fields["id"] = activity.id
    fields["timestamp"] = activity.timestamp
    fields["channel_id"] = activity.channel_id
    fields["from_property"] = _account(BfAccount, activity.from_)
    fields["recipient"] = _account(BfAccount, activity.recipient)
    fields["conversation"] = _account(BfConversation, activity.conversation)
    fields["text"] = activity.text
    fields["locale"] = activity.locale
    if attachments is not None:
        fields["attachments"] = [_build(BfAttachment, a) for a in attachments]
    fields["service_url"] = activity.service_url
    fields["reply_to_id"] = activity.reply_to_id
    fields["channel_data"] = activity.channel_data
    fields["value"] = activity.value
    fields["name"] = activity.name
    out = _instance(BfActivity, fields)
    extras = activity.__pydantic_extra__ or {}
    # A typed field is not None only once set (its default is None): most turns set none.
    typed = (
        [(k, v) for k, v in ((k, getattr(activity, f)) for f, k in _TYPED) if v is not None]
        if _TYPED_NAMES.intersection(activity.model_fields_set)
        else []
    )
    if extras or typed:
        spec = _spec(BfActivity)
        for key, value in [*typed, *extras.items()]:
            found = spec.get(key)
            if found is None:
                out.additional_properties[key] = value
            elif found[0] == "suggested_actions":
                out.suggested_actions = value  # passed through as sent
            else:
                setattr(out, found[0], _value_in(found[1], value))
    return out


def reply_data(activity: Any) -> dict[str, Any]:
    """A ``botbuilder.schema.Activity`` (as a bot builds it) as wire data for our Activity.

    Accounts without an id are left out; ``type`` defaults to ``message``.
    """
    data: dict[str, Any] = plain(activity)
    for key in ("from", "recipient", "conversation"):
        account = data.get(key)
        if account is not None and account.get("id") is None:
            del data[key]  # nothing without an id; ``to_midtier`` fills in from/conversation
    data.setdefault("type", "message")
    return data


def from_botbuilder(activity: Any) -> Activity:
    """A ``botbuilder.schema.Activity`` (as a bot builds it) as our Activity."""
    return Activity.model_validate(reply_data(activity))
