"""``replaced`` gives what ``model_copy(update=...)`` gives, on the activities it copies;
the intent result made from a classifier's ranking."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from connector import modelcopy
from connector.activity import Activity
from connector.interfaces import IntentResult
from connector.modelcopy import replaced
from connector.routing.nlu import intent_result


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


def test_an_intent_result_from_the_ranking_is_the_expected_one() -> None:
    made_here = intent_result([0.1, 0.7, 0.2], ["a", "b", "oos"], 2, threshold=0.5)
    assert made_here == IntentResult(
        name="b", confidence=0.7, ranking=[("b", 0.7), ("a", 0.1)], out_of_scope=False
    )
    assert IntentResult.model_validate_json(made_here.model_dump_json()) == made_here


def test_the_suite_runs_the_self_checks() -> None:
    assert modelcopy.CHECKING  # tests/conftest.py sets MIDTIER_SELF_CHECKS before imports
