"""The Twilio kit: webhooks signed by twilio-python's own ``RequestValidator``, a fake REST API
that answers ``Messages.json`` as Twilio documents it (201 with the Message resource).

Inbound messages are the documented SMS example (``tests/payloads/twilio/sms.json``) with the
test's text, user and message id. The helpers at the end build the adapter and its requests
for the tests that call it directly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web
from multidict import CIMultiDict
from twilio.request_validator import RequestValidator

from adapters.channels.twilio import TwilioChannel, TwilioSettings
from connector.channels import ChannelRequest
from connector.context import ChannelContext, SharedHttp
from support.channel_kits import Reply, WebhookCall
from support.fake_platform import Call, FakePlatform

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "twilio"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
OUR_NUMBER = "+14155552671"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def payload(name: str) -> dict[str, Any]:
    """A documented payload from ``tests/payloads/twilio``."""
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> WebhookCall:
    """A form POST as Twilio makes it, signed for ``url``."""
    return WebhookCall(
        body=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
        },
    )


def sms(text: str, *, user: str, message_id: str) -> dict[str, str]:
    """The documented inbound SMS, from ``user`` to our number."""
    params = payload("sms.json")
    params.update(
        Body=text,
        From=user,
        To=OUR_NUMBER,
        AccountSid=ACCOUNT_SID,
        MessageSid=message_id,
        SmsSid=message_id,
        SmsMessageSid=message_id,
    )
    return params


def form_of(call: Call) -> list[tuple[str, str]]:
    """A form body with its repeated fields (``MediaUrl``), in order."""
    return parse_qsl(call.body.decode(), keep_blank_values=True)


class TwilioKit:
    """``ChannelKit`` for kind ``twilio``."""

    kind = "twilio"
    env = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    secret_key = "auth_token"
    signs_body = True

    def __init__(self) -> None:
        self._created: list[Reply] = []
        self._urls: dict[bytes, str] = {}  # body -> the URL it was signed for
        self._sids = (f"SM{n:032x}" for n in itertools.count(1))

    def settings(self, api_base: str) -> dict[str, Any]:
        return {
            "kind": "twilio",
            "account_sid": ACCOUNT_SID,
            "auth_token": "${TWILIO_AUTH_TOKEN}",
            "api_base": api_base,
        }

    def prepare(self, platform: FakePlatform) -> None:
        def create(call: Call) -> web.Response:
            form = dict(form_of(call))
            answer = payload("message_created.json")
            sid = next(self._sids)
            media = [v for k, v in form_of(call) if k == "MediaUrl"]
            answer.update(
                sid=sid,
                body=form.get("Body", ""),
                to=form.get("To"),
                messaging_service_sid=form.get("MessagingServiceSid"),
                num_media=str(len(media)),
                uri=MESSAGES.replace(".json", f"/{sid}.json"),
            )
            answer["from"] = form.get("From")
            index = next(i for i, c in enumerate(platform.calls) if c is call)
            self._created.append(Reply(form.get("To", ""), form.get("Body", ""), index))
            return web.json_response(answer, status=201)

        platform.route("POST", MESSAGES, create)

    def message(self, url: str, text: str, *, user: str, message_id: str) -> WebhookCall:
        call = sign(url, sms(text, user=user, message_id=message_id))
        self._urls[call.body] = url
        return call

    def sign_body(self, url: str, body: bytes) -> WebhookCall:
        """Twilio signs the form's fields: whatever of ``body`` reads as a form is signed."""
        text = body.decode("utf-8", "replace")
        params = dict(parse_qsl(text, keep_blank_values=True))
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        return WebhookCall(body=body, headers=headers)

    def forged(self, call: WebhookCall) -> WebhookCall:
        """The same request signed with another token."""
        params = dict(parse_qsl(call.body.decode(), keep_blank_values=True))
        return sign(self._urls[call.body], params, token="not-the-auth-token")

    def replies(self, platform: FakePlatform) -> list[Reply]:
        """Messages the fake API accepted (a call it failed on purpose created nothing)."""
        return list(self._created)


# ---------------------------------------------------------------------- the adapter alone

URL = "https://chat.example.com/channels/sms"  # the public webhook URL of channel "sms"


def channel(http: SharedHttp | None = None, **settings: Any) -> TwilioChannel:
    """The adapter built as the core builds it, for tests that call it directly."""
    values = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, **settings}
    context = ChannelContext(
        name="sms",
        settings=TwilioSettings.model_validate(values),
        data_dir=Path("unused"),
        public_url="https://chat.example.com",
        http=http or SharedHttp(),
        file="midtier.yaml",
        key="channels.sms",
        host=cast(Any, None),  # a webhook channel never calls its host
    )
    return TwilioChannel(context)


def request(
    body: bytes,
    *,
    url: str = URL,
    signature: str | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    headers: dict[str, str] | None = None,
) -> ChannelRequest:
    """A webhook call as the core hands it to the adapter."""
    found = CIMultiDict(headers or {})
    if signature is not None:
        found["X-Twilio-Signature"] = signature
    return ChannelRequest(
        method="POST",
        url=url,
        path=urlsplit(url).path,
        headers=found,
        query=dict(parse_qsl(urlsplit(url).query)),
        body=body,
        content_type=content_type,
    )


def signed(params: dict[str, str], url: str = URL, token: str = AUTH_TOKEN) -> ChannelRequest:
    """A form POST signed by twilio-python for ``url``."""
    signature = RequestValidator(token).compute_signature(url, params)
    return request(urlencode(params).encode(), url=url, signature=signature)


def signed_json(params: Any, token: str = AUTH_TOKEN) -> tuple[ChannelRequest, str]:
    """A JSON POST as Twilio signs one (``bodySHA256`` in the URL); and its body."""
    body = json.dumps(params)
    url = f"{URL}?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    signature = RequestValidator(token).compute_signature(url, {})
    incoming = request(body.encode(), url=url, signature=signature, content_type="application/json")
    return incoming, body
