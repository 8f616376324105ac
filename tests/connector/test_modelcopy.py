"""``replaced`` gives what ``model_copy(update=...)`` gives, on the models it copies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from connector import modelcopy
from connector.activity import Activity
from connector.interfaces import IntentResult
from connector.modelcopy import made, replaced
from connector.records import InboundEntry, OutboxEntry
from connector.routing.nlu import intent_result
from connector.sessions import Leg, MidTierSession, TranscriptEntry


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


AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (
            TranscriptEntry,
            {"seq": 0, "at": AT, "speaker": "bot", "text": "hi", "provider": "faq",
             "leg_id": "leg_1", "activity": WIRE, "ref": None},
        ),
        (
            TranscriptEntry,
            {"seq": 0, "at": AT, "speaker": "user", "text": None, "provider": None,
             "leg_id": None, "activity": {}, "ref": "m1"},
        ),
        (
            OutboxEntry,
            {"id": "o1", "session_id": "mts_1", "channel": "webchat", "conversation_id": "c",
             "activity": WIRE, "created_at": AT, "attempts": 0, "next_attempt_at": AT,
             "last_error": None},
        ),
    ],
)  # fmt: skip
def test_a_made_record_is_what_validation_gives(
    cls: type[BaseModel], values: dict[str, Any]
) -> None:
    assert set(values) == set(cls.model_fields)  # every field, as made() needs
    _same(made(cls, **values), cls(**values))


def test_an_intent_result_from_the_ranking_is_the_validated_one() -> None:
    made_here = intent_result([0.1, 0.7, 0.2], ["a", "b", "oos"], 2, threshold=0.5)
    assert made_here == IntentResult(
        name="b", confidence=0.7, ranking=[("b", 0.7), ("a", 0.1)], out_of_scope=False
    )
    assert (
        made_here.model_dump_json()
        == IntentResult.model_validate(made_here.model_dump()).model_dump_json()
    )


def test_the_suite_runs_the_self_checks_and_made_refuses_fields_out_of_order() -> None:
    assert modelcopy.CHECKING  # tests/conftest.py sets MIDTIER_SELF_CHECKS before imports
    values = {"seq": 0, "at": AT, "speaker": "user", "text": None, "provider": None,
              "leg_id": None, "activity": {}, "ref": None}  # fmt: skip
    with pytest.raises(TypeError, match="in their order"):
        made(TranscriptEntry, **dict(reversed(values.items())))
    with pytest.raises(TypeError, match="every field"):
        made(TranscriptEntry, **{k: v for k, v in values.items() if k != "ref"})
