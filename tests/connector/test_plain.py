"""The core's plain records (``connector.plain``): the JSON they read and write is the one
stored by the pydantic models they replace, what they read is validated, and their
attributes are plain slots."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError

from connector.interfaces import IntentResult
from connector.records import InboundEntry, OutboxEntry
from connector.routing.decision import Candidate, Choice, RouteDecision
from connector.sessions import DeliveryFailure, Leg, MidTierSession, TranscriptEntry

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# A session as the store wrote it when sessions were pydantic models (every field, in order).
STORED = (
    '{"id":"mts_1","user_id":"u-1","channel":"webchat","channel_conversation_id":"c1",'
    '"status":"active","created_at":"2026-12-01T12:00:00Z","updated_at":"2026-12-01T12:00:00Z",'
    '"legs":[{"id":"leg_a","channel":"webchat","channel_conversation_id":"c1","provider":"faq",'
    '"provider_conversation_id":"p1","opened_at":"2026-12-01T12:00:00Z","closed_at":null,'
    '"close_reason":null,"open_reason":"route","data":{"intent":"card_lost"}},'
    '{"id":"leg_b","channel":"webchat","channel_conversation_id":"c1","provider":"desk",'
    '"provider_conversation_id":"","opened_at":"2026-12-01T12:00:00Z",'
    '"closed_at":"2026-12-01T12:00:00Z","close_reason":"resolved","open_reason":"","data":{}}],'
    '"claims":{"sub":"u-1"},"slots":{"k":[1,2]},"channel_state":{"resume":"h"},'
    '"delivery_failures":[{"at":"2026-12-01T12:00:00Z","channel":"webchat","activity_id":"a1",'
    '"excerpt":"hi","reason":"refused","attempts":3,"outcome":"rejected"}],"version":7}'
)


def test_a_stored_session_reads_into_records_and_writes_back_byte_for_byte() -> None:
    session = MidTierSession.model_validate_json(STORED)
    assert [type(leg) for leg in session.legs] == [Leg, Leg]
    assert type(session.delivery_failures[0]) is DeliveryFailure
    assert session.legs[1].closed_at == AT and session.legs[1].closed_at.tzinfo is not None
    assert session.current_leg is None and session.legs[0].opened_for == "card_lost"
    assert session.model_dump_json() == STORED
    assert MidTierSession.model_validate(json.loads(STORED)) == session


# A route decision as the history kept it when decisions were pydantic models.
DECIDED = (
    '{"at":"2026-12-01T12:00:00Z","action":"switch","provider":"agents","previous":"faq",'
    '"intent":"report_fraud","confidence":0.91,"out_of_scope":false,"summary":"reported fraud",'
    '"reason":"agents serves report_fraud","next_best":"faq","channels":[],'
    '"alternatives":[{"provider":"agents","eligible":true,"reason":"serves"}],'
    '"choices":[{"intent":"a","provider":"b","title":"T","confidence":0.5}],"message_id":"act_1"}'
)


def test_a_stored_decision_reads_into_records_and_writes_back_byte_for_byte() -> None:
    decision = RouteDecision.model_validate_json(DECIDED)
    assert type(decision.alternatives[0]) is Candidate and type(decision.choices[0]) is Choice
    assert decision.model_dump_json() == DECIDED
    with pytest.raises(ValidationError, match="action"):
        RouteDecision.model_validate({**json.loads(DECIDED), "action": "jump"})


def test_what_a_record_reads_is_validated_and_unknown_keys_are_ignored() -> None:
    data = json.loads(STORED)
    with pytest.raises(ValidationError, match="status"):
        MidTierSession.model_validate({**data, "status": "paused"})
    with pytest.raises(ValidationError, match="version"):
        MidTierSession.model_validate_json(json.dumps({**data, "version": "seven"}))
    with pytest.raises(ValidationError, match="provider"):
        MidTierSession.model_validate({**data, "legs": [{"channel": "webchat"}]})
    later = MidTierSession.model_validate({**data, "from_a_later_version": 1})
    assert later.model_dump_json() == STORED


def test_a_copy_is_shallow_with_its_update_and_leaves_the_original_alone() -> None:
    session = MidTierSession.model_validate_json(STORED)
    copied = session.model_copy(update={"version": 8, "updated_at": AT})
    assert (session.version, copied.version) == (7, 8)
    assert copied.legs is session.legs  # the same objects: a shallow copy
    assert copied == dataclasses.replace(session, version=8, updated_at=AT)  # every field
    assert copied.model_copy() == copied and copied.model_copy() is not copied
    deep = session.model_copy(deep=True)
    assert deep == session and deep.legs is not session.legs
    deep.legs[0].closed_at = AT
    assert session.legs[0].closed_at is None


def test_a_dump_in_json_mode_takes_include_and_exclude() -> None:
    session = MidTierSession.model_validate_json(STORED)
    assert session.model_dump(mode="json", include={"id", "version"}) == {
        "id": "mts_1",
        "version": 7,
    }
    line = TranscriptEntry(seq=3, at=AT, speaker="user", text="hi", activity={"type": "x"})
    assert line.model_dump(mode="json", exclude={"activity"}) == {
        "seq": 3,
        "at": "2026-12-01T12:00:00Z",
        "speaker": "user",
        "text": "hi",
        "provider": None,
        "leg_id": None,
        "ref": None,
    }


_OUTBOX = OutboxEntry(
    id="o1",
    session_id="mts_1",
    channel="webchat",
    conversation_id="c1",
    activity={"type": "message", "text": "hello"},
    created_at=AT,
    next_attempt_at=AT,
)
_INBOUND = InboundEntry(
    id="i1",
    channel="webchat",
    conversation="c1",
    user_id="u-1",
    activity={"type": "message", "text": "hi"},
    dedupe_key="in:webchat:c1:m1",
    created_at=AT,
)


@pytest.mark.parametrize(
    "record",
    [
        _OUTBOX,
        _INBOUND,
        TranscriptEntry(at=AT, speaker="bot", text="hello", provider="faq", leg_id="leg_a"),
    ],
)
def test_queue_entries_and_lines_round_trip_through_their_json(
    record: OutboxEntry | InboundEntry | TranscriptEntry,
) -> None:
    again = type(record).model_validate_json(record.model_dump_json())
    assert again == record and again is not record


def test_records_read_their_attributes_from_slots_without_a_getattr_hook() -> None:
    # What makes them cheap to read: a pydantic model's class defines __getattr__, which
    # sends every attribute read of it down CPython's slow path.
    assert hasattr(BaseModel, "__getattr__")
    session = MidTierSession.model_validate_json(STORED)
    records = [session, session.legs[0], session.delivery_failures[0]]
    records += [TranscriptEntry(speaker="user"), _OUTBOX, _INBOUND]
    decision = RouteDecision.model_validate_json(DECIDED)
    records += [decision, decision.alternatives[0], decision.choices[0]]
    records += [IntentResult(name="a", confidence=1.0)]
    for record in records:
        assert not hasattr(type(record), "__getattr__"), type(record)
        assert not hasattr(record, "__dict__"), type(record)
