"""Reading untrusted requests: every route reads its input through these, so that the size
limit, the media type, the charset and the decoding rules of :mod:`connector.payloads` hold
everywhere. (aiohttp's side of it; the rules themselves know nothing of aiohttp.)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from connector.engine import Engine
from connector.errors import AuthError, MalformedPayload, PayloadTooLarge, UnsupportedMediaType
from connector.payloads import (
    ContentType,
    checked_text,
    header_text,
    parse_content_type,
    parse_form,
    parse_json,
)

BODY_LIMIT = web.AppKey("body_limit", int)  # limits.max_body_bytes, set by create_app
ENGINE = web.AppKey("engine", Engine)


def header(request: web.Request, name: str) -> str | None:
    """A request header midtier reads; a non-ASCII value is a 400."""
    return header_text(request.headers.get(name), name)


def authorization(request: web.Request) -> str | None:
    """The ``Authorization`` header; one that is not ASCII fails authentication (401)."""
    try:
        return header(request, "Authorization")
    except MalformedPayload as exc:
        raise AuthError(str(exc)) from exc


def match_text(request: web.Request, key: str) -> str:
    """A path parameter as valid text (aiohttp percent-decodes it)."""
    return checked_text(request.match_info[key], f"the path parameter {key}")


def query_text(request: web.Request, key: str) -> str | None:
    """A query parameter as valid text, or None."""
    value = request.query.get(key)
    return None if value is None else checked_text(value, f"the query parameter {key}")


def content_type(request: web.Request) -> ContentType:
    """The request's parsed ``Content-Type`` (empty when absent)."""
    return parse_content_type(header(request, "Content-Type"))


async def read_body(request: web.Request) -> bytes:
    """The raw body, at most ``limits.max_body_bytes`` (413), also when sent chunked.

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    chunked body is counted as it arrives. Broken framing (bad chunks, bad compression, a
    body cut short) is a 400.
    """
    limit = request.app[BODY_LIMIT]
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"body is over the limit of {limit} bytes") from exc
    except (HttpProcessingError, web.RequestPayloadError) as exc:
        # Bad chunk sizes, a Content-Encoding that does not decode, a length that lies.
        cause = exc.__cause__ if isinstance(exc.__cause__, HttpProcessingError) else exc
        raise MalformedPayload(f"the body could not be read ({type(cause).__name__})") from exc
    except ConnectionResetError as exc:
        # The client stopped sending (or hung up) before the body was complete; the answer
        # will most likely find nobody, but the handler ends like any other bad request.
        raise MalformedPayload("the body ended before it was complete") from exc


def decode_json(request: web.Request, raw: bytes) -> Any:
    """``raw`` (the body of ``request``) as JSON, in the charset the request declares.

    Any ``Content-Type`` is read as JSON (bots and services differ in what they declare),
    except a form or multipart one, which says the body is something else.
    """
    ctype = content_type(request)
    if ctype.is_form or ctype.media_type.startswith("multipart/"):
        raise UnsupportedMediaType(f"expected a JSON body, not {ctype.media_type}")
    return parse_json(raw, ctype.charset)


def decode_form(request: web.Request, raw: bytes) -> dict[str, str]:
    """``raw`` as an ``application/x-www-form-urlencoded`` form (an empty body is none)."""
    ctype = content_type(request)
    if not ctype.is_form and (ctype.media_type or raw.strip()):
        raise UnsupportedMediaType(
            f"expected application/x-www-form-urlencoded, not {ctype.media_type or 'no type'}"
        )
    return parse_form(raw, ctype.charset)


async def read_json(request: web.Request) -> Any:
    """The body as a JSON value (bounded nesting, no lone surrogates, finite numbers)."""
    return decode_json(request, await read_body(request))


async def read_json_object(request: web.Request, what: str = "body") -> dict[str, Any]:
    """The body as a JSON object."""
    value = await read_json(request)
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} must be a JSON object")
    return value


async def read_form(request: web.Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (or none), decoded strictly."""
    return decode_form(request, await read_body(request))


async def read_fields(request: web.Request) -> dict[str, Any]:
    """A JSON object or a urlencoded form, as the ``Content-Type`` says (form by default)."""
    raw = await read_body(request)  # the size limit first, whatever the type
    ctype = content_type(request)
    if ctype.is_json:
        value = decode_json(request, raw)
        if not isinstance(value, dict):
            raise MalformedPayload("body must be a JSON object")
        return value
    if ctype.is_form or not ctype.media_type:
        return dict(decode_form(request, raw))
    raise UnsupportedMediaType(
        f"expected application/x-www-form-urlencoded or application/json, not {ctype.media_type}"
    )
