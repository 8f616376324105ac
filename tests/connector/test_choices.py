"""Choices a bot offers, answered with their number on channels that show them as text."""

from __future__ import annotations

from pathlib import Path

from support.doubles import make_engine, user_message

from connector.activity import Activity, Attachment
from connector.choices import answer, offered


def _with_choices(*values: str) -> Activity:
    actions = [{"type": "imBack", "title": v.title(), "value": v} for v in values]
    return Activity(type="message", text="Which card?", suggested_actions={"actions": actions})


def test_offered_reads_suggested_actions_then_hero_card_buttons() -> None:
    activity = _with_choices("debit")
    activity.attachments = [
        Attachment(
            content_type="application/vnd.microsoft.card.hero",
            content={
                "buttons": [
                    {"type": "postBack", "title": "Credit", "value": "credit"},
                    {"type": "openUrl", "title": "Site", "value": "https://example.com"},
                ]
            },
        )
    ]
    assert offered(activity) == [("Debit", "debit"), ("Credit", "credit")]


def test_only_a_bare_number_within_the_offer_is_an_answer() -> None:
    offer = ["debit", "credit"]
    assert answer("2", offer) == "credit"
    assert answer(" 1. ", offer) == "debit"
    assert answer("3", offer) is None
    assert answer("0", offer) is None
    assert answer("2 cards", offer) is None


async def test_a_number_answers_the_last_offer_and_only_once(tmp_path: Path) -> None:
    engine, providers, _channel = make_engine(tmp_path)
    faq = providers["faq"]
    faq.answer = lambda activity: [_with_choices("debit", "credit")]
    await engine.receive("test", user_message("hello", msg_id="m1"))
    await engine.receive("test", user_message("2", msg_id="m2"))
    await engine.receive("test", user_message("2", msg_id="m3"))
    # The second "2" answers the offer the reply to the first made; a plain message drops it.
    faq.answer = lambda activity: [Activity(type="message", text="ok")]
    await engine.receive("test", user_message("1", msg_id="m4"))
    await engine.receive("test", user_message("1", msg_id="m5"))
    assert faq.messages() == ["hello", "credit", "credit", "debit", "1"]
