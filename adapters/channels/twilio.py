"""Twilio Programmable Messaging (SMS, MMS and WhatsApp through Twilio), kind ``twilio``.

``midtier.yaml``::

    channels:
      sms:
        kind: twilio
        account_sid: ${TWILIO_ACCOUNT_SID}
        auth_token: ${TWILIO_AUTH_TOKEN}
        # from_number: "+15017122661"        # else replies go from the number the user wrote to
        # messaging_service_sid: MG...       # or let a Messaging Service pick the sender
        # webhook_url: https://chat.example.com/channels/sms   # behind a proxy: as in the console

**Inbound.** Twilio POSTs a form per message to ``/channels/<name>``, signed with
``X-Twilio-Signature`` (base64 HMAC-SHA1 of the URL and the sorted parameters, keyed with the
auth token; a JSON body carries ``bodySHA256`` in the URL instead). The conversation is
``"<To>:<From>"``: the number the user wrote to, then the user's own address (a phone number,
or ``whatsapp:+...``), which is all a reply needs. ``MessageSid`` is the dedupe key. Status
callbacks carry no ``Body`` and are left out. The answer is an empty TwiML ``<Response>``:
replies go through the outbox and the REST API, never inline, so that they are retried.

**Outbound.** ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with Basic auth. SMS has no
buttons, so choices are numbered lines (the user answers with the number); there is no
typing indicator. One REST call per activity, so a retried activity is never half sent twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlparse

from multidict import MultiDict
from pydantic import BaseModel, ConfigDict, Field

from adapters.channels import platform_api, render
from adapters.channels.twilio_payload import (
    MAX_MEDIA,
    is_status_callback,
    message_of,
    message_type,
    reply_addresses,
)
from connector.activity import Activity, ActivityTypes
from connector.channels import ChannelRequest, ChannelResponse, IgnoredKinds
from connector.context import ChannelContext
from connector.errors import AuthError, ChannelError, DeliveryRejected, Forbidden, MalformedPayload
from connector.logs import redactor
from connector.payloads import decode_text, parse_content_type

SIGNATURE = "X-Twilio-Signature"
# Present when a Webhook Rule signs with a shared key: "key=<id>,algorithm=HMAC_SHA256".
SIGNATURE_SETTINGS = "X-Twilio-Webhooks-Signature-Settings"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BODY = 1600  # Twilio's limit for Body, counted in UTF-16 code units to be safe
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
# Permanent refusals, said plainly (Twilio's own message may quote the user's number).
_REJECTED = {
    21211: "the To number is not a valid phone number",
    21408: "sending to this region is not enabled on the account",
    21610: "the user replied STOP: messages to them are blocked until they reply START",
    21614: "the To number is not a mobile number",
    63016: "outside WhatsApp's 24-hour window: only an approved template may be sent",
}


class TwilioSettings(BaseModel):
    """``channels.<name>`` of ``kind: twilio`` in midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=1, description="secret: ${TWILIO_AUTH_TOKEN}")
    from_number: str | None = Field(default=None, min_length=1, max_length=64)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    api_base: str = Field(default="https://api.twilio.com", pattern=r"^https?://[^/?#]+/?$")
    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^?#]+$",
        description="the webhook URL as configured in Twilio, without its query string",
    )
    shared_key_secret: str | None = Field(
        default=None, min_length=1, description="secret of a Webhook Rule's shared signing key"
    )
    # An SMS sender's number as a proven identity (cross-channel continuation by identity):
    # off by default, since SMS sender numbers can be spoofed on some routes. WhatsApp
    # numbers through Twilio are always given.
    sms_identity: bool = False


class TwilioChannel:
    """SMS, MMS and WhatsApp through one Twilio account."""

    Settings = TwilioSettings

    def __init__(self, context: ChannelContext[TwilioSettings]) -> None:
        self.name = context.name
        self._settings = settings = context.settings
        self._http = context.http
        self._token = settings.auth_token.encode()
        self._shared = settings.shared_key_secret.encode() if settings.shared_key_secret else None
        # Basic auth written out: aiohttp.BasicAuth is deprecated in newer aiohttp releases.
        basic = base64.b64encode(f"{settings.account_sid}:{settings.auth_token}".encode())
        self._headers = {"Authorization": "Basic " + basic.decode()}
        redactor.add(settings.auth_token)  # never in a log line, a URL logged included
        redactor.add(basic.decode())
        if settings.shared_key_secret:
            redactor.add(settings.shared_key_secret)
        base = settings.api_base.rstrip("/")
        self._messages_url = f"{base}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        self._ignored = IgnoredKinds(context.name)

    # ------------------------------------------------------------------ inbound

    async def verify(self, request: ChannelRequest) -> None:
        """``X-Twilio-Signature`` as twilio-python's ``RequestValidator`` checks it."""
        provided = request.header(SIGNATURE)
        if not provided:
            raise AuthError(f"no {SIGNATURE} header")
        if not provided.isascii():
            raise Forbidden(f"the {SIGNATURE} header does not match")
        key, digest = self._signing_key(request.header(SIGNATURE_SETTINGS))
        url = self._signed_url(request.url)
        if "bodySHA256" in request.query:
            # A JSON body: its hash is in the (signed) URL, and no parameters are signed.
            body_hash = hashlib.sha256(request.body).hexdigest().encode()
            claimed = request.query["bodySHA256"]
            if not claimed.isascii() or not hmac.compare_digest(body_hash, claimed.encode()):
                raise Forbidden("the body does not match bodySHA256")
            params: list[tuple[str, str]] = []
        else:
            params = _signed_params(request)
        wanted = provided.encode()
        matched = False
        for candidate in _port_variants(url):
            expected = _signature(key, digest, candidate, params)
            matched |= hmac.compare_digest(expected, wanted)
        if not matched:
            raise Forbidden(f"the {SIGNATURE} header does not match")

    def _signing_key(self, settings_header: str) -> tuple[bytes, Any]:
        """The secret and hash a request is signed with: the auth token and HMAC-SHA1, unless a
        Webhook Rule signs it with a shared key (its settings header names the algorithm)."""
        if not settings_header:
            return self._token, hashlib.sha1
        algorithm = "HMAC_SHA1"
        for part in settings_header.split(","):
            name, sep, value = part.partition("=")
            if sep and name.strip() == "algorithm" and value.strip():
                algorithm = value.strip().upper()
        digest = _HASHES.get(algorithm)
        if digest is None:
            raise Forbidden("the request is signed with an algorithm midtier does not know")
        if self._shared is None:
            raise Forbidden("the request is signed with a shared key; set shared_key_secret")
        return self._shared, digest

    def _signed_url(self, url: str) -> str:
        """The URL Twilio signed: the configured ``webhook_url`` (behind a proxy) or the one
        midtier was called at, with the query string as it arrived."""
        if self._settings.webhook_url is None:
            return url
        _, sep, query = url.partition("?")
        return self._settings.webhook_url + sep + query

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """The message of one webhook call (Twilio sends one per call), or none for a status
        callback or a message with nothing midtier can pass on."""
        params: Mapping[str, Any]
        params = request.json_object() if "bodySHA256" in request.query else request.form()
        if is_status_callback(params):
            self._ignored("status callback")
            return []
        activity = message_of(params, self.name, sms_identity=self._settings.sms_identity)
        if activity is None:
            self._ignored(f"{message_type(params)} message")
            return []
        return [activity]

    async def acknowledge(
        self, request: ChannelRequest, activities: list[Activity]
    ) -> ChannelResponse:
        """An empty TwiML response: nothing is said inline, replies follow by REST."""
        return ChannelResponse(body=EMPTY_TWIML, content_type="text/xml")

    # ------------------------------------------------------------------ outbound

    async def send(self, activity: Activity) -> str:
        """Send a message through the REST API; return its ``sid`` ("" for nothing sent)."""
        if activity.type != ActivityTypes.MESSAGE:
            return ""  # no typing indicator, no events on SMS
        ours, user = reply_addresses(activity)
        text = render.text_of(activity)
        options = render.choices(activity)
        if options:
            text = render.numbered(text, options)
        media = [image.url for image in render.images(activity)]
        room = 1 if user.startswith("whatsapp:") else MAX_MEDIA
        if len(media) > room:  # the rest as links rather than a second message
            text = "\n".join([text, *media[room:]] if text else media[room:])
            media = media[:room]
        body = render.cut_utf16(text, MAX_BODY)
        if not body and not media:
            return ""
        form: MultiDict[str] = MultiDict(To=user)
        if self._settings.from_number:
            form["From"] = self._settings.from_number
        elif self._settings.messaging_service_sid:
            form["MessagingServiceSid"] = self._settings.messaging_service_sid
        else:
            form["From"] = ours
        if body:
            form["Body"] = body
        for url in media:
            form.add("MediaUrl", url)
        answer = await platform_api.call(
            self._http(),
            "POST",
            self._messages_url,
            what="twilio send",
            form=form,
            headers=self._headers,
            classify=_classify,
        )
        sid = answer.get("sid") if isinstance(answer, dict) else None
        return sid if isinstance(sid, str) else ""


# ---------------------------------------------------------------------- signature


def _port_variants(url: str) -> list[str]:
    """The URL without and with its port, as ``RequestValidator`` tries both (Twilio signs
    either, depending on where the request was made)."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        return [url]
    if port:
        return [parsed._replace(netloc=parsed.netloc.split(":")[0]).geturl(), parsed.geturl()]
    default = 443 if parsed.scheme == "https" else 80
    return [parsed.geturl(), parsed._replace(netloc=f"{parsed.netloc}:{default}").geturl()]


def _signed_params(request: ChannelRequest) -> list[tuple[str, str]]:
    """Every form parameter as sent (repeats included): what the signature covers. A body that
    cannot be read cannot be checked, so it does not verify."""
    try:
        charset = parse_content_type(request.content_type or None).charset
        text = decode_text(request.body, charset)
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (MalformedPayload, UnicodeError, ValueError):
        raise Forbidden(f"the {SIGNATURE} header does not match") from None


def _signature(key: bytes, digest: Any, url: str, params: list[tuple[str, str]]) -> bytes:
    """base64 HMAC of the URL followed by each name and value, in sorted order (repeated
    names once, with their distinct values sorted), as twilio-python computes it."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    signed = url + "".join(name + v for name in sorted(values) for v in sorted(values[name]))
    mac = hmac.new(key, signed.encode("utf-8", "surrogatepass"), digest)
    return base64.b64encode(mac.digest())


# ---------------------------------------------------------------------- sending


def _classify(status: int, body: Any) -> ChannelError | None:
    """Twilio's error JSON ``{"code", "message", "more_info", "status"}``: known permanent
    refusals get a plain reason; 429 and 5xx stay retried, other 4xx refused (the default)."""
    if status == 429 or status >= 500 or not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, int) and code in _REJECTED:
        return DeliveryRejected(f"twilio send: {_REJECTED[code]} (error {code})")
    return None
