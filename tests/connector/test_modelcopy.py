"""``replaced`` gives what ``model_copy(update=...)`` gives, on the models it copies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from connector.activity import Activity
from connector.modelcopy import replaced
from connector.records import InboundEntry
from connector.sessions import Leg, MidTierSession


def _same(a: BaseModel, b: BaseModel) -> None:
    assert type(a) is type(b)
    assert a == b
    assert a.__dict__ == b.__dict__
    assert a.__pydantic_extra__ == b.__pydantic_extra__
    assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
    assert a.__pydantic_private__ == b.__pydantic_private__
    assert a.model_dump_json() == b.model_dump_json()


WIRE = {
    "type": "message",
    "text": "hello",
    "from": {"id": "u-1", "role": "user"},
    "conversation": {"id": "c-1"},
    "channelData": {"page": 1},
    "somethingElse": {"kept": True},  # an extra: kept aside, copied too
}


@pytest.mark.parametrize(
    ("model", "update"),
    [
        (Activity.model_validate(WIRE), {"id": "a-1"}),
        (Activity.model_validate(WIRE), {"channel_data": {"midtier": {"intent": "x"}}}),
        (Activity(), {}),
        (
            InboundEntry(id="i", channel="webchat", conversation="c", user_id="u", activity=WIRE),
            {"session_id": "mts_1"},
        ),
        (
            MidTierSession(
                user_id="u",
                channel="webchat",
                channel_conversation_id="c",
                legs=[Leg(channel="webchat", channel_conversation_id="c", provider="faq")],
            ),
            {"version": 3},
        ),
    ],
)
def test_a_replaced_copy_is_what_model_copy_gives(model: BaseModel, update: dict[str, Any]) -> None:
    _same(replaced(model, **update), model.model_copy(update=update))


def test_a_replaced_copy_is_shallow_and_leaves_the_original_alone() -> None:
    activity = Activity.model_validate(WIRE)
    copied = replaced(activity, text="bye")
    assert (activity.text, copied.text) == ("hello", "bye")
    assert copied.channel_data is activity.channel_data  # shallow: the same objects
    assert copied.__pydantic_extra__ is not activity.__pydantic_extra__  # its own dict of them
    copied.locale = "fr"
    assert activity.locale is None and "locale" not in activity.model_fields_set
