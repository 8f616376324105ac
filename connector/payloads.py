"""The one place where untrusted bytes become values.

Every route and both WebSockets read what strangers send: JSON bodies and frames, OAuth forms,
header values. Python's own decoders fail on such input in ways the HTTP layer cannot map to
a status: ``json.loads`` recurses (``RecursionError`` on ``[[[[...``), happily returns lone
surrogates (``"\\ud800"``) that later blow up in SQLite, ``hmac`` or ``str.encode``; an unknown
``charset`` is a ``LookupError``; ``parse_qsl`` replaces invalid UTF-8 silently by default;
aiohttp hands non-ASCII header bytes over as surrogate escapes. Here each of those becomes a
:class:`MalformedPayload` (400) or :class:`UnsupportedMediaType` (415) whose message says what
was wrong, never what was sent (messages end up in logs, bodies must not).

This module knows nothing of aiohttp; ``connector.app`` reads the request and calls it. It
runs on every message, so the common case stays cheap (about 1 us over ``json.loads`` for
one Activity): nesting is only measured when the text has more brackets than the limit
allows, and then with a few linear passes of bytes methods over the brackets and quotes
only; parsed strings are only searched for surrogates when the text has a surrogate escape
that is not part of a correct pair.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from connector.errors import MalformedPayload, UnsupportedMediaType

MAX_DEPTH = 64
"""Deepest JSON nesting accepted (Activities with Adaptive Cards stay well below 20)."""
MAX_FORM_FIELDS = 64

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_SPECIAL = bytes(b for b in range(256) if b not in b'[]{}"')
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
# Surrogates written as \u escapes: a correctly paired one (an emoji, as json.dumps writes
# it) whose backslash is not itself escaped, and any at all. What is left of the second
# once the first are gone may be a lone surrogate: then the parsed strings are looked at.
_PAIR_ESCAPE = re.compile(r"\\(?<!\\\\)u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_UTF8 = frozenset({"utf-8", "utf8", "utf_8"})


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed ``Content-Type``: lower-case ``type/subtype`` and its parameters."""

    media_type: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def charset(self) -> str | None:
        return self.params.get("charset")

    @property
    def is_json(self) -> bool:
        return self.media_type == "application/json" or self.media_type.endswith("+json")

    @property
    def is_form(self) -> bool:
        return self.media_type == "application/x-www-form-urlencoded"


def header_text(value: str | None, name: str) -> str | None:
    """A header value midtier reads, or None when absent; non-ASCII is refused.

    HTTP header values are ASCII in practice; aiohttp passes other bytes on as surrogate
    escapes, which break every later ``encode()`` (token checks, signatures).
    """
    if value is None:
        return None
    if not value.isascii():
        raise MalformedPayload(f"the {name} header must be ASCII")
    return value


def checked_text(value: str, what: str) -> str:
    """``value`` when it is encodable text (no lone surrogates); MalformedPayload otherwise."""
    if not value.isascii() and _SURROGATE.search(value):
        raise MalformedPayload(f"{what} is not valid Unicode text")
    return value


def parse_content_type(value: str | None) -> ContentType:
    """Parse a ``Content-Type`` header (RFC 9110 media type with parameters)."""
    if value is None or not value.strip():
        return ContentType()
    header_text(value, "Content-Type")
    kind, *rest = value.split(";")
    kind = kind.strip().lower()
    main, slash, sub = kind.partition("/")
    if not slash or not _TOKEN.match(main) or not _TOKEN.match(sub):
        raise MalformedPayload("the Content-Type header is not a media type")
    params: dict[str, str] = {}
    for part in rest:
        key, eq, val = part.strip().partition("=")
        if not key and not eq:
            continue  # "type/sub;" with a trailing semicolon
        key = key.strip().lower()
        if not eq or not _TOKEN.match(key):
            raise MalformedPayload("the Content-Type header has a malformed parameter")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params[key] = val
    return ContentType(kind, params)


def _quoted(name: str) -> str:
    """A name from the request, quoted for an error message only when it is a short token."""
    return repr(name) if len(name) <= 40 and _TOKEN.match(name) else "(not shown)"


def _text_codec(charset: str) -> str:
    """The codec name of a declared charset that Python can decode text with, else 415."""
    name = charset.strip().lower()
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError) as exc:
        raise UnsupportedMediaType(f"unknown charset {_quoted(name)}") from exc
    # Codecs such as base64 or rot13 are known but do not turn bytes into text.
    if not getattr(info, "_is_text_encoding", True):
        raise UnsupportedMediaType(f"charset {_quoted(name)} is not a text encoding")
    return info.name


def decode_text(raw: bytes, charset: str | None = None) -> str:
    """``raw`` as text: UTF-8, or the declared ``charset`` when Python knows it.

    Invalid bytes are a 400, an unknown charset a 415; lone surrogates never come out.
    """
    if charset is None or charset.strip().lower() in _UTF8:
        try:
            return raw.decode("utf-8")  # strict UTF-8 has no lone surrogates
        except UnicodeDecodeError as exc:
            raise MalformedPayload(f"body is not valid UTF-8 (byte {exc.start})") from exc
    codec = _text_codec(charset)
    try:
        text = raw.decode(codec)
    except (UnicodeError, ValueError, LookupError, TypeError) as exc:
        raise MalformedPayload(f"body is not valid {codec}") from exc
    return checked_text(text, "body")


def _finite(number: str) -> float:
    value = float(number)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_depth(data: bytes, max_depth: int) -> None:
    """Refuse JSON (UTF-8) nested deeper than ``max_depth``, in time linear in its size."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # not enough brackets to go too deep: one Activity, most requests
    if b"\\" in data:
        data = _ESCAPE.sub(b"", data)  # escapes out: every quote left opens or closes a string
    # Quotes and brackets only; two quotes in a row close a string and open the next with
    # nothing between (or are an empty string): out with them. What is left between quotes
    # are brackets inside strings, which do not nest.
    specials = data.translate(None, _NOT_SPECIAL).replace(b'""', b"")
    brackets = b"".join(specials.split(b'"')[::2]).translate(_ONE_KIND)
    # Valid JSON nests properly: each pass takes out the innermost pairs. (A mismatched
    # pair is invalid JSON, which the parser refuses before it nests any deeper.)
    too_deep = b"[" * (max_depth + 1)
    if not brackets:
        return  # every bracket was inside a string
    for _ in range(max_depth):
        if too_deep in brackets:
            break
        inner = brackets.replace(b"[]", b"")
        if not inner:
            return
        if inner == brackets:
            raise MalformedPayload("body is not valid JSON (its brackets do not match)")
        brackets = inner
    raise MalformedPayload(f"JSON is nested deeper than {max_depth} levels")


def _maybe_lone(text: str) -> bool:
    return _SURROGATE_ESCAPE.search(_PAIR_ESCAPE.sub("", text)) is not None


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constants)


def loads(text: str, *, max_depth: int = MAX_DEPTH, what: str = "body") -> Any:
    """Parse JSON text with bounded nesting, finite numbers and no lone surrogates.

    ``text`` comes from a strict decoder (:func:`decode_text`, aiohttp's WebSocket reader),
    so a lone surrogate can only be written as a ``\\u`` escape; that is where it is looked for.
    """
    if text.count("[") + text.count("{") > max_depth:
        _check_depth(text.encode("utf-8", "surrogatepass"), max_depth)
    return _decode(text, what)


def _decode(text: str, what: str) -> Any:
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise MalformedPayload(f"{what} is not valid JSON ({exc.msg} at {where})") from exc
    except ValueError as exc:  # Infinity, NaN, 1e999, integers over 4300 digits
        reason = "a number has too many digits" if "digits" in str(exc) else str(exc)
        raise MalformedPayload(f"{what} is not valid JSON ({reason})") from exc
    if "\\u" in text and _maybe_lone(text) and _has_surrogate(value):
        raise MalformedPayload(f"{what} has a lone UTF-16 surrogate in a string")
    return value


def parse_json(
    raw: bytes, charset: str | None = None, *, max_depth: int = MAX_DEPTH, what: str = "body"
) -> Any:
    """A JSON body (UTF-8 unless ``charset`` says otherwise) as a value."""
    if charset is None or charset.strip().lower() in _UTF8:
        _check_depth(raw, max_depth)  # on the bytes, before decoding them
        return _decode(decode_text(raw), what)
    return loads(decode_text(raw, charset), max_depth=max_depth, what=what)


def json_object(raw: bytes, charset: str | None = None, *, what: str = "body") -> dict[str, Any]:
    """A JSON body that must be an object."""
    value = parse_json(raw, charset, what=what)
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} must be a JSON object")
    return value


def parse_form(
    raw: bytes, charset: str | None = None, *, max_fields: int = MAX_FORM_FIELDS
) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, decoded strictly.

    Invalid UTF-8 (raw or percent-encoded) is a 400, and so is a field given twice (RFC 6749
    forbids repeating a parameter; silently keeping one of them would hide the attack).
    """
    text = decode_text(raw, charset)
    codec = "utf-8" if charset is None else _text_codec(charset)
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding=codec,
            errors="strict",
            max_num_fields=max_fields,
        )
    except UnicodeError as exc:
        raise MalformedPayload(f"a form field is not valid {codec} once percent-decoded") from exc
    except ValueError as exc:
        raise MalformedPayload(f"the form has more than {max_fields} fields") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        checked_text(key, "a form field name")
        checked_text(value, f"form field {_quoted(key)}")
        if key in form:
            raise MalformedPayload(f"form field {_quoted(key)} is given more than once")
        form[key] = value
    return form


__all__ = [
    "MAX_DEPTH",
    "ContentType",
    "checked_text",
    "decode_text",
    "header_text",
    "json_object",
    "loads",
    "parse_content_type",
    "parse_form",
    "parse_json",
]
