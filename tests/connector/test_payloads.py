"""Untrusted bytes become values or a MalformedPayload with a reason, never another error."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connector.errors import MalformedPayload, UnsupportedMediaType
from connector.payloads import (
    MAX_DEPTH,
    checked_text,
    decode_text,
    header_text,
    json_object,
    loads,
    parse_content_type,
    parse_form,
    parse_json,
)

# Text as JSON carries it: any code point but lone surrogates (hypothesis' default).
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)
LONE = ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\uD83D", "\\uDE00"]


def _refused(call: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(MalformedPayload) as caught:
        call(*args, **kw)
    return str(caught.value)


@given(json_values, st.booleans())
def test_any_json_value_comes_back_unchanged(value: Any, ascii_only: bool) -> None:
    # ensure_ascii writes characters outside the BMP as escaped surrogate pairs: valid.
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert parse_json(raw) == value


def test_an_escaped_surrogate_pair_is_an_emoji() -> None:
    assert parse_json(b'{"text": "hi \\ud83d\\ude00"}') == {"text": "hi \U0001f600"}
    assert loads('["\\uD83D\\uDE00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]


@given(st.sampled_from(LONE), st.text(max_size=20), st.text(max_size=20), st.booleans())
def test_a_lone_surrogate_anywhere_is_refused(
    lone: str, before: str, after: str, key: bool
) -> None:
    inner = json.dumps(before)[:-1] + lone + json.dumps(after)[1:]
    doc = f"{{{inner}: 1}}" if key else f'{{"a": [1, {{"b": {inner}}}]}}'
    assert "lone UTF-16 surrogate" in _refused(parse_json, doc.encode())


@given(st.integers(min_value=MAX_DEPTH + 1, max_value=50_000), st.sampled_from("[{"))
def test_deep_nesting_is_refused_before_parsing(depth: int, bracket: str) -> None:
    doc = "[" * depth + "]" * depth if bracket == "[" else '{"a":' * depth + "1" + "}" * depth
    assert f"nested deeper than {MAX_DEPTH}" in _refused(parse_json, doc.encode())
    # also unbalanced, as an attacker sends it
    assert "nested deeper" in _refused(loads, bracket * depth)


def test_nesting_up_to_the_limit_passes_and_brackets_in_strings_do_not_count() -> None:
    doc = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(doc.encode()) is not None
    text = '[["' + "[{" * 5_000 + '\\"' + "[" * 100 + '"]]'
    assert loads(text) == [["[{" * 5_000 + '"' + "[" * 100]]
    assert loads(json.dumps({"t": "\\" * 7 + "[" * 200})) == {"t": "\\" * 7 + "[" * 200}


def _depth_outside_strings(text: str) -> int:
    """The nesting of ``text`` the slow, obvious way: character by character."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@given(st.text(alphabet='[]{}"\\a,:1', max_size=300), st.integers(min_value=0, max_value=6))
def test_the_nesting_check_agrees_with_a_character_by_character_count(
    text: str, limit: int
) -> None:
    try:
        expected: Any = json.loads(text)
    except (ValueError, RecursionError):
        expected = None  # not JSON: only the depth verdict matters
    deepest = _depth_outside_strings(text)
    try:
        got = loads(text, max_depth=limit)
    except MalformedPayload as exc:
        assert deepest > limit or expected is None, (str(exc), deepest)
    else:
        assert deepest <= limit and got == expected


@given(
    st.lists(
        st.text(alphabet=["\\", "u", "d", "8", "c", "0", "a", "\ud800", "\udc00", "\U0001f600"]),
        max_size=4,
    ),
    st.booleans(),
)
def test_a_lone_surrogate_is_found_however_it_is_escaped(
    strings: list[str], ascii_only: bool
) -> None:
    try:
        text = json.dumps(strings, ensure_ascii=ascii_only)
        text.encode("utf-8")  # raw lone surrogates cannot come out of a strict decoder
    except UnicodeEncodeError:
        return
    truth = json.loads(text)  # (a high and a low one next to each other become a pair)
    lone = any(0xD800 <= ord(c) <= 0xDFFF for s in truth for c in s)
    try:
        assert loads(text) == truth and not lone
    except MalformedPayload as exc:
        assert lone, str(exc)


@given(st.text(alphabet=["\\", "u", "d", "D", "8", "b", "c", "0", "f", "a"], max_size=40))
@example(r"\\ud800\udc00")  # an escaped backslash, text, then a lone low surrogate
@example(r"\\\ud800\udc00")  # an escaped backslash, then a valid pair
@example(r"\ud800\ud800\udc00")  # a lone high surrogate, then a pair
@example(r"\udc00\ud800")  # a pair the wrong way round
def test_escapes_written_by_hand_are_judged_like_the_parser_reads_them(inner: str) -> None:
    text = f'["{inner}"]'
    try:
        value = json.loads(text)
    except ValueError:
        return  # not JSON
    lone = any(0xD800 <= ord(c) <= 0xDFFF for c in value[0])
    try:
        assert loads(text) == value and not lone
    except MalformedPayload as exc:
        assert lone, str(exc)


@given(st.binary(max_size=300))
def test_random_bytes_are_a_value_or_a_malformed_payload(raw: bytes) -> None:
    try:
        parse_json(raw)
    except MalformedPayload as exc:
        assert str(exc)


@given(st.text(alphabet='[]{}"\\:,0 a', max_size=400))
def test_bracket_soup_is_a_value_or_a_malformed_payload(text: str) -> None:
    try:
        loads(text)
    except MalformedPayload as exc:
        assert str(exc)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff{}", "not valid UTF-8 (byte 0)"),
        (b'{"a": \xed\xa0\x80}', "not valid UTF-8"),  # a surrogate encoded as UTF-8
        (b"NaN", "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b"1e999", "number out of range"),
        (b"1" * 5000, "a number has too many digits"),
        (b"{", "not valid JSON (Expecting property name"),
        (b"", "not valid JSON (Expecting value at line 1 column 1)"),
    ],
)
def test_bad_json_says_why(raw: bytes, reason: str) -> None:
    assert reason in _refused(parse_json, raw)


def test_an_object_is_required_where_the_protocol_says_so() -> None:
    assert json_object(b'{"a": 1}') == {"a": 1}
    assert (
        _refused(json_object, b"[1]", what="the callback") == "the callback must be a JSON object"
    )


def test_declared_charsets_python_knows_are_read_and_others_are_415() -> None:
    assert parse_json('{"a": "é"}'.encode("latin-1"), "ISO-8859-1") == {"a": "é"}
    assert parse_json('{"a": "é"}'.encode("utf-16"), "utf-16") == {"a": "é"}
    assert parse_json(b'{"a": 1}', "UTF-8") == {"a": 1}
    for charset, reason in [
        ("klingon", "unknown charset 'klingon'"),
        ("rot13", "charset 'rot13' is not a text encoding"),
        ("base64", "is not a text encoding"),
        ("\x00" * 50, "unknown charset (not shown)"),
    ]:
        with pytest.raises(UnsupportedMediaType) as refused:
            parse_json(b"{}", charset)
        assert reason in str(refused.value)
    assert "not valid utf-16" in _refused(decode_text, b"\x00\xd8", "utf-16-le")
    # a codec that can make lone surrogates out of plain bytes still cannot pass them on
    assert "not valid Unicode text" in _refused(decode_text, b"\\ud800", "unicode_escape")


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=10))
def test_forms_come_back_unchanged(fields: dict[str, str]) -> None:
    assert parse_form(urlencode(fields).encode()) == fields


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"code=%ff", "not valid utf-8 once percent-decoded"),
        (b"code=%ED%A0%80", "not valid utf-8 once percent-decoded"),
        (b"co%C3de=1", "not valid utf-8 once percent-decoded"),
        (b"code=\xff", "not valid UTF-8"),
        (b"code=1&code=2", "form field 'code' is given more than once"),
        (b"&".join(b"f%d=1" % i for i in range(65)), "more than 64 fields"),
    ],
)
def test_bad_forms_say_why(raw: bytes, reason: str) -> None:
    assert reason in _refused(parse_form, raw)


def test_a_form_in_a_declared_charset() -> None:
    assert parse_form(b"name=%E9", "latin-1") == {"name": "é"}
    assert "not valid Unicode text" in _refused(parse_form, b"a=%5Cud800", "unicode_escape")


def test_headers_midtier_reads_must_be_ascii() -> None:
    assert header_text(None, "Authorization") is None
    assert header_text("Bearer abc", "Authorization") == "Bearer abc"
    # aiohttp hands raw bytes 0x80-0xff on as surrogate escapes
    for value in ("Bearer \udcff", "Bearer é", "Bearer \U0001f600"):
        assert _refused(header_text, value, "Authorization") == (
            "the Authorization header must be ASCII"
        )


def test_checked_text_refuses_lone_surrogates_only() -> None:
    assert checked_text("wc_\U0001f600 ok", "id") == "wc_\U0001f600 ok"
    assert _refused(checked_text, "wc_\ud800", "id") == "id is not valid Unicode text"


@pytest.mark.parametrize(
    ("value", "media_type", "params"),
    [
        (None, "", {}),
        ("Application/JSON; Charset=UTF-8", "application/json", {"charset": "UTF-8"}),
        ('text/plain; charset="latin-1";', "text/plain", {"charset": "latin-1"}),
        ("multipart/form-data", "multipart/form-data", {}),
        ("application/activity+json", "application/activity+json", {}),
    ],
)
def test_content_types_are_parsed(
    value: str | None, media_type: str, params: dict[str, str]
) -> None:
    parsed = parse_content_type(value)
    assert (parsed.media_type, parsed.params) == (media_type, params)


def test_content_type_kinds() -> None:
    assert parse_content_type("application/activity+json").is_json
    assert parse_content_type("application/x-www-form-urlencoded").is_form
    assert not parse_content_type("text/plain").is_json


@pytest.mark.parametrize("value", ["json", "a/b/c", "text/plain; charset", "a/b; =x", "é/x"])
def test_malformed_content_types_are_refused(value: str) -> None:
    _refused(parse_content_type, value)


@given(st.text(max_size=60))
def test_any_content_type_header_parses_or_is_refused(value: str) -> None:
    with contextlib.suppress(MalformedPayload):
        parse_content_type(value)
