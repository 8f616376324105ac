"""Verifying ``X-Twilio-Signature``: our check and twilio-python's ``RequestValidator`` reach
the same verdict on genuine, forged, cut and re-ported requests; missing is a 401, wrong a
403; proxies, repeated fields and shared signing keys."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from multidict import MultiDict
from support.channel_kits.twilio import AUTH_TOKEN, URL, channel, payload, request
from twilio.request_validator import RequestValidator

from connector.errors import AuthError, Forbidden, MalformedPayload

SMS = payload("sms.json")


HOST = "chat.example.com"
FORM = urlencode(SMS).encode()
# name: (the URL Twilio signed, the URL midtier was called at, the body that arrived, the
# token it was signed with, whether it is genuine). twilio-python's validator and our verify
# must both reach that verdict.
CASES: dict[str, tuple[str, str, bytes, str, bool]] = {
    "as signed": (URL, URL, FORM, AUTH_TOKEN, True),
    "signed with :443, called without": (
        f"https://{HOST}:443/channels/sms",
        URL,
        FORM,
        AUTH_TOKEN,
        True,
    ),
    "signed without :443, called with": (
        URL,
        f"https://{HOST}:443/channels/sms",
        FORM,
        AUTH_TOKEN,
        True,
    ),
    "http, signed with :80": (
        f"http://{HOST}:80/channels/sms",
        f"http://{HOST}/channels/sms",
        FORM,
        AUTH_TOKEN,
        True,
    ),
    "another port, signed without": (
        URL,
        f"https://{HOST}:8443/channels/sms",
        FORM,
        AUTH_TOKEN,
        True,
    ),
    "with a query string": (f"{URL}?tenant=a", f"{URL}?tenant=a", FORM, AUTH_TOKEN, True),
    "forged": (URL, URL, FORM, "another-token", False),
    "cut short": (URL, URL, FORM[: len(FORM) // 2], AUTH_TOKEN, False),
    "text changed": (URL, URL, FORM.replace(b"Acme", b"Acne"), AUTH_TOKEN, False),
    "a parameter added": (URL, URL, FORM + b"&Extra=1", AUTH_TOKEN, False),
    "another path": (URL, f"{URL}-other", FORM, AUTH_TOKEN, False),
    "another query string": (f"{URL}?tenant=a", f"{URL}?tenant=b", FORM, AUTH_TOKEN, False),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_verify_agrees_with_twilio_pythons_request_validator(case: str) -> None:
    signed_url, called_url, body, token, genuine = CASES[case]
    signature = RequestValidator(token).compute_signature(signed_url, SMS)
    received = MultiDict(parse_qsl(body.decode(), keep_blank_values=True))
    theirs = RequestValidator(AUTH_TOKEN).validate(called_url, received, signature)
    try:
        await channel().verify(request(body, url=called_url, signature=signature))
        ours = True
    except Forbidden:
        ours = False
    assert ours == theirs == genuine


async def test_a_missing_signature_is_a_401_and_a_wrong_one_a_403() -> None:
    body = urlencode(SMS).encode()
    with pytest.raises(AuthError) as missing:
        await channel().verify(request(body))
    assert not isinstance(missing.value, Forbidden)
    for wrong in ("nope", "ünïcode", RequestValidator("x").compute_signature(URL, SMS)):
        with pytest.raises(Forbidden):
            await channel().verify(request(body, signature=wrong))


async def test_a_body_that_cannot_be_read_is_refused_as_unverified_not_a_crash() -> None:
    for body in (b"Body=%FF%FE", b"\xff\xfe=1"):
        with pytest.raises(Forbidden):
            await channel().verify(request(body, signature="anything"))


async def test_a_repeated_field_is_signed_as_twilio_python_does_and_then_refused() -> None:
    """Twilio numbers its repeats (MediaUrl0, MediaUrl1): a form with a field twice is not
    one of its messages, even when it carries a good signature."""
    params = MultiDict([*SMS.items(), ("Body", "again")])
    signature = RequestValidator(AUTH_TOKEN).compute_signature(URL, params)
    incoming = request(urlencode(list(params.items())).encode(), signature=signature)
    adapter = channel()
    await adapter.verify(incoming)
    with pytest.raises(MalformedPayload, match="more than once"):
        await adapter.parse(incoming)


async def test_behind_a_proxy_the_configured_webhook_url_is_what_is_signed() -> None:
    inside = "http://10.0.0.5:8080/channels/sms?tenant=a"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{URL}?tenant=a", SMS)
    incoming = request(urlencode(SMS).encode(), url=inside, signature=signature)
    await channel(webhook_url=URL).verify(incoming)
    with pytest.raises(Forbidden):
        await channel().verify(incoming)


async def test_a_shared_key_signature_uses_the_key_and_algorithm_it_names() -> None:
    secret = "shared-key-secret-0123456789"
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=KS123,algorithm=HMAC_SHA256"}
    signature = RequestValidator(secret).compute_signature(URL, SMS, algorithm="HMAC_SHA256")
    incoming = request(urlencode(SMS).encode(), signature=signature, headers=settings)
    await channel(shared_key_secret=secret).verify(incoming)
    with pytest.raises(Forbidden):
        await channel().verify(incoming)  # no shared key configured
    unknown = request(
        urlencode(SMS).encode(),
        signature=signature,
        headers={"X-Twilio-Webhooks-Signature-Settings": "key=KS123,algorithm=HMAC_MD5"},
    )
    with pytest.raises(Forbidden):
        await channel(shared_key_secret=secret).verify(unknown)
