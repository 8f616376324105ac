"""The Twilio channel reading Twilio's documented webhooks (``tests/payloads/twilio``): every
kind of message, status callbacks left out, signed forms that do not fit refused, and the
acknowledgement compared with the TwiML twilio-python writes."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Any, cast

import pytest
from support.channel_kits.twilio import (
    AUTH_TOKEN,
    OUR_NUMBER,
    channel,
    payload,
    request,
    signed,
    signed_json,
)
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from connector.activity import Activity
from connector.errors import Forbidden, MalformedPayload

USER = "+14155552345"
WA_USER = "whatsapp:+14155552345"
WA_NUMBER = "whatsapp:+14155238886"
SMS = payload("sms.json")


async def parsed(name: str) -> list[Activity]:
    adapter = channel()
    incoming = signed(payload(name))
    await adapter.verify(incoming)
    return await adapter.parse(incoming)


async def test_an_sms_is_a_message_from_the_sender_in_the_conversation_with_our_number() -> None:
    [activity] = await parsed("sms.json")
    assert activity.type == "message"
    assert activity.id == "SM1342fe1b2c904d1ab04f0fc7a58abca9"
    assert activity.text == "Hello, is this Acme Pay?"
    assert activity.conversation is not None
    assert activity.conversation.id == f"{OUR_NUMBER}:{USER}"
    assert activity.from_ is not None and activity.from_.id == USER
    assert activity.recipient is not None and activity.recipient.id == OUR_NUMBER
    assert activity.channel_id == "sms" and activity.timestamp is not None
    assert activity.attachments is None and activity.entities is None


async def test_a_whatsapp_number_is_a_proven_identity_an_sms_number_only_if_trusted() -> None:
    [whatsapp] = await parsed("whatsapp_text.json")
    assert whatsapp.channel_data == {"identities": ["phone:+14155552345"]}
    [sms] = await parsed("sms.json")
    assert sms.channel_data is None  # SMS senders can be spoofed on some routes
    adapter = channel(sms_identity=True)
    incoming = signed(payload("sms.json"))
    await adapter.verify(incoming)
    [trusted] = await adapter.parse(incoming)
    assert trusted.channel_data == {"identities": [f"phone:{USER}"]}


async def test_an_mms_carries_each_picture_as_an_attachment_in_order() -> None:
    [activity] = await parsed("mms.json")
    fixture = payload("mms.json")
    assert activity.text == "Here is the receipt"
    assert [a.model_dump(by_alias=True, exclude_none=True) for a in activity.attachments or []] == [
        {"contentType": "image/jpeg", "contentUrl": fixture["MediaUrl0"]},
        {"contentType": "image/png", "contentUrl": fixture["MediaUrl1"]},
    ]


async def test_a_whatsapp_message_names_the_user_by_their_profile() -> None:
    [activity] = await parsed("whatsapp_text.json")
    assert activity.from_ is not None
    assert (activity.from_.id, activity.from_.name) == (WA_USER, "Sheena")
    assert activity.conversation is not None
    assert activity.conversation.id == f"{WA_NUMBER}:{WA_USER}"


async def test_a_whatsapp_picture_keeps_its_caption_as_text() -> None:
    [activity] = await parsed("whatsapp_image.json")
    assert activity.text == "the card"
    [picture] = activity.attachments or []
    assert picture.content_type == "image/jpeg"
    assert picture.content_url == payload("whatsapp_image.json")["MediaUrl0"]


async def test_a_whatsapp_location_is_a_geocoordinates_entity() -> None:
    [activity] = await parsed("whatsapp_location.json")
    assert activity.text is None
    assert activity.entities == [
        {
            "type": "GeoCoordinates",
            "latitude": 37.7879277,
            "longitude": -122.4075207,
            "name": "Acme Pay office",
            "address": "101 Spear St, San Francisco, CA 94105",
        }
    ]


async def test_a_whatsapp_quick_reply_gives_the_bot_the_payload_it_offered() -> None:
    [activity] = await parsed("whatsapp_button.json")
    assert activity.text == "freeze_card"
    assert activity.value == {"ButtonPayload": "freeze_card", "ButtonText": "Yes, freeze it"}


@pytest.mark.parametrize("name", ["status_delivered.json", "status_whatsapp_read.json"])
async def test_status_callbacks_are_left_out(name: str) -> None:
    assert await parsed(name) == []


async def test_a_message_with_nothing_to_pass_on_is_left_out_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = channel()
    incoming = signed(payload("whatsapp_unsupported.json"))
    with caplog.at_level(logging.INFO, logger="midtier.channels"):
        assert await adapter.parse(incoming) == []
        assert await adapter.parse(incoming) == []
    assert [r.getMessage() for r in caplog.records] == [
        "channel sms ignores unsupported message events"
    ]


async def test_a_json_body_signed_through_body_sha256_is_read_like_the_form() -> None:
    incoming, body = signed_json(payload("sms.json"))
    assert RequestValidator(AUTH_TOKEN).validate(
        incoming.url, body, incoming.header("X-Twilio-Signature")
    )
    adapter = channel()
    await adapter.verify(incoming)
    [activity] = await adapter.parse(incoming)
    assert activity.text == "Hello, is this Acme Pay?"
    altered = request(
        body.replace("Acme", "Acne").encode(),
        url=incoming.url,
        signature=incoming.header("X-Twilio-Signature"),
        content_type="application/json",
    )
    assert not RequestValidator(AUTH_TOKEN).validate(
        altered.url, altered.body.decode(), altered.header("X-Twilio-Signature")
    )
    with pytest.raises(Forbidden):
        await adapter.verify(altered)


# A form Twilio signed that midtier cannot take is a 400 (MalformedPayload), never a crash.
BROKEN = {
    "no MessageSid": {k: v for k, v in SMS.items() if k != "MessageSid"},
    "no From": {k: v for k, v in SMS.items() if k != "From"},
    "a From with a newline": {**SMS, "From": "+1\n2"},
    "NumMedia not a number": {**SMS, "NumMedia": "two"},
    "NumMedia in other digits": {**SMS, "NumMedia": "\u0662"},
    "NumMedia over ten": {**SMS, "NumMedia": "11"},
    "a missing MediaUrl": {**SMS, "NumMedia": "1"},
    "a MediaUrl that is no URL": {**SMS, "NumMedia": "1", "MediaUrl0": "file:///etc/passwd"},
    "only a Latitude": {**SMS, "Latitude": "37.7"},
    "a Latitude off the globe": {**SMS, "Latitude": "91", "Longitude": "0"},
    "a Latitude in words": {**SMS, "Latitude": "nan", "Longitude": "0"},
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_signed_form_midtier_cannot_take_is_malformed(case: str) -> None:
    incoming = signed(BROKEN[case])
    adapter = channel()
    await adapter.verify(incoming)
    with pytest.raises(MalformedPayload):
        await adapter.parse(incoming)


@pytest.mark.parametrize(
    "params", [{**SMS, "From": 14155552345}, {**SMS, "NumMedia": 1}, {**SMS, "Body": None}]
)
async def test_a_signed_json_body_with_wrong_types_is_malformed(params: dict[str, Any]) -> None:
    incoming, _ = signed_json(params)
    adapter = channel()
    await adapter.verify(incoming)
    with pytest.raises(MalformedPayload):
        await adapter.parse(incoming)


async def test_a_signed_json_body_that_is_not_an_object_is_malformed() -> None:
    incoming, _ = signed_json(cast(Any, ["Body", "hi"]))
    adapter = channel()
    await adapter.verify(incoming)
    with pytest.raises(MalformedPayload):
        await adapter.parse(incoming)


async def test_the_acknowledgement_is_the_empty_twiml_twilio_python_writes() -> None:
    adapter = channel()
    answer = await adapter.acknowledge(signed(SMS), [])
    assert answer.status == 200 and answer.content_type == "text/xml"
    ours, theirs = answer.body.decode(), str(MessagingResponse())
    declaration = '<?xml version="1.0" encoding="UTF-8"?>'
    assert ours.startswith(declaration) and theirs.startswith(declaration)
    mine, sdk = (
        ET.fromstring(ours.removeprefix(declaration)),
        ET.fromstring(theirs.removeprefix(declaration)),
    )
    assert (mine.tag, mine.attrib, list(mine), (mine.text or "").strip()) == (
        sdk.tag,
        sdk.attrib,
        list(sdk),
        (sdk.text or "").strip(),
    )
