"""Claims of a session that several channels vouch for."""

from __future__ import annotations

import pytest

from connector.claims import identities, merge_claims, phone_identity, verified_identities

WEB = {"sub": "u_1", "channel": "webchat", "verified": False}
SMS = {
    "sub": "+16505551234",
    "channel": "sms",
    "verified": True,
    "identities": ["phone:+16505551234"],
}


@pytest.mark.parametrize(
    ("number", "identity"),
    [
        ("16505551234", "phone:+16505551234"),  # WhatsApp's wa_id
        ("+16505551234", "phone:+16505551234"),
        ("whatsapp:+16505551234", "phone:+16505551234"),  # a Twilio channel address
        ("+1 (650) 555-1234", "phone:+16505551234"),
        ("12", None),
        ("+0123456789", None),
        ("not a number", None),
    ],
)
def test_phone_numbers_become_one_identity_whatever_their_format(
    number: str, identity: str | None
) -> None:
    assert phone_identity(number) == identity


def test_only_well_formed_identities_are_kept() -> None:
    given = ["phone:16505551234", "phone:+16505551234", "email:a@b.example", "x", 3, "phone:1"]
    assert identities(given) == ["phone:+16505551234", "email:a@b.example"]
    assert identities("phone:+16505551234") == []
    assert identities([f"id:{n}" for n in range(20)]) == [f"id:{n}" for n in range(8)]


def test_unverified_claims_prove_no_identity() -> None:
    assert verified_identities({**WEB, "identities": ["phone:+16505551234"]}) == []
    assert verified_identities({**SMS, "verified": "yes"}) == []
    assert verified_identities(SMS) == ["phone:+16505551234"]


def test_a_verified_channel_takes_the_top_and_keeps_the_label_it_replaced() -> None:
    merged = merge_claims(WEB, SMS)
    assert merged == {**SMS, "linked": [WEB]}


def test_an_unverified_label_never_replaces_verified_claims() -> None:
    merged = merge_claims(SMS, {**WEB, "identities": ["phone:+15550000000"]})
    assert {k: merged[k] for k in ("sub", "channel", "verified")} == {
        "sub": "+16505551234",
        "channel": "sms",
        "verified": True,
    }
    assert merged["identities"] == ["phone:+16505551234"]  # the label's claim is not taken
    assert merged["linked"] == [WEB]


def test_the_same_channel_speaking_again_replaces_its_own_claims() -> None:
    merged = merge_claims(
        merge_claims(WEB, SMS), {k: v for k, v in SMS.items() if k != "identities"}
    )
    assert merged["identities"] == ["phone:+16505551234"]  # what was proved stays proved
    assert merged["linked"] == [WEB]
    assert merge_claims(WEB, None) == WEB
    assert merge_claims({}, WEB) == WEB


def test_identities_proved_on_two_channels_are_all_kept() -> None:
    whatsapp = {"sub": "16505551234", "channel": "whatsapp", "verified": True}
    whatsapp["identities"] = ["phone:+16505551234", "wa:16505551234"]
    merged = merge_claims(SMS, whatsapp)
    assert merged["channel"] == "whatsapp"
    assert merged["identities"] == ["phone:+16505551234", "wa:16505551234"]
    assert merged["linked"] == [{k: v for k, v in SMS.items() if k != "identities"}]


def test_the_same_claims_again_leave_the_sessions_as_they_were() -> None:
    label = {"sub": "u-1", "channel": "webchat", "verified": False}
    assert merge_claims(label, dict(label)) is label  # nothing to write back
    proved = {"sub": "1650", "channel": "whatsapp", "verified": True}
    assert merge_claims(proved, dict(proved)) is proved
    with_identities = merge_claims({}, {**proved, "identities": ["phone:+16505551234"]})
    again = merge_claims(with_identities, dict(with_identities))
    assert again == with_identities  # merged the long way: its identities normalized again
