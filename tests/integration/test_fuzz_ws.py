"""Whatever a client sends on the web chat or the agent desk socket, the server answers with an
error frame or closes with a proper code, never an abnormal close (1006, 1011).

Frames are written byte by byte (``support.raw.RawSocket``), so that text frames can carry
invalid UTF-8 and frames can break RFC 6455 itself. Each example is one connection: maybe a
valid ``hello`` or desk sign-in first, then the fuzzed frame, then a probe frame that must
still get its error frame, then a clean close. After each kind of input the server must
still serve a normal chat.

``MIDTIER_FUZZ_EXAMPLES`` (default 40) is the number of connections per kind of input.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import strategies as st
from support.fuzz import (
    EXAMPLES,
    LONE_SURROGATES,
    deep_json,
    draw,
    json_values,
    lone_surrogate_json,
)
from support.fuzz_world import ENV, Records, fuzzed_deployment, normal_chat_works
from support.raw import (
    Outcome,
    RawSocket,
    exchange,
    proper,
)
from support.server import Running

from connector.errors import MalformedPayload
from connector.payloads import loads

TOKEN = ENV["MIDTIER_AGENT_TOKEN"]


@dataclass(frozen=True)
class Frame:
    """One frame to send: opcode, payload and header bits as written on the wire."""

    payload: bytes
    opcode: int = 0x1
    fin: bool = True
    rsv: int = 0


def _text(value: Any) -> Frame:
    return Frame(json.dumps(value).encode())


def _lone(template: str) -> st.SearchStrategy[Frame]:
    """``template`` with ``LONE`` replaced by a lone surrogate escape (a JSON string)."""
    return st.sampled_from(LONE_SURROGATES).map(
        lambda lone: Frame(template.replace("LONE", f'"a{lone}b"').encode())
    )


# Anything that is not a well-formed JSON object frame: both sockets see these first.
not_json = st.one_of(
    st.text(max_size=200).map(lambda t: Frame(t.encode())),
    st.binary(max_size=200).map(lambda b: Frame(b, opcode=0x2)),
    st.sampled_from([b"\xff\xfe", b'{"type": "hello\xed\xa0\x80"}', b"caf\xc3"]).map(Frame),
    deep_json().map(Frame),
    lone_surrogate_json().map(Frame),
    json_values.map(_text),
    st.just(Frame(b"x" * 70_000)),  # over max_msg_size
    st.just(Frame(json.dumps({"type": "hello", "pad": "x" * 70_000}).encode())),
)
# Frames that break the WebSocket protocol itself.
protocol_junk = st.sampled_from(
    [
        Frame(b"{}", opcode=0x3),  # reserved opcode
        Frame(b"{}", opcode=0xB),  # reserved control opcode
        Frame(b"{}", rsv=0b100),  # RSV1 without an extension
        Frame(b'{"type"', fin=False),  # a fragment, then ...
        Frame(b"x", opcode=0x0),  # ... a continuation with no message started
        Frame(b"p" * 200, opcode=0x9),  # a ping over 125 bytes
        Frame(b"\x03", opcode=0x8),  # a close frame with a 1-byte payload
        Frame(b"\x03\xe8\xff", opcode=0x8),  # a close reason that is not UTF-8
    ]
)

hello_junk = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("hello")},
        optional={"resume": json_values, "conversation": json_values, "user": json_values},
    ).map(_text),
    st.text(max_size=80).map(lambda t: _text({"type": "hello", "resume": t})),
    st.text(max_size=40).map(lambda t: _text({"type": "hello", "resume": f"wc_{t}.{t}"})),
    _lone('{"type": "hello", "resume": LONE, "user": null}'),
    _lone('{"type": "hello", "resume": null, "user": LONE}'),
    _lone('{"type": LONE}'),
    st.sampled_from(
        [
            _text({"type": "hello", "resume": "wc_" + "x" * 5000 + ".y", "user": None}),
            _text({"type": "hello", "resume": "\U0001f600.\U0001f600", "user": "\U0001f600"}),
            _text({"type": "hello", "resume": ".", "user": None}),
            Frame(b'{"type": "hello", "resume": null, "user": "\\ud83d\\ude00"}'),
        ]
    ),
)
# What a page may send once it said hello, besides messages.
after_hello_junk = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["history", "typing", "rotate", "rating"])},
        optional={"before": json_values, "text": json_values, "value": json_values},
    ).map(_text),
    _lone('{"type": "rating", "value": LONE}'),
    st.integers().map(lambda n: _text({"type": "history", "before": n})),
    _lone('{"type": "history", "before": LONE}'),
    st.sampled_from(
        [
            _text({"type": "history", "before": 10**40}),
            _text({"type": "history", "before": True}),
            _text({"type": "history", "before": 1.5}),
        ]
    ),
)
message_junk = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("message")},
        optional={"id": json_values, "text": json_values},
    ).map(_text),
    _lone('{"type": "message", "id": "m1", "text": LONE}'),
    _lone('{"type": "message", "id": LONE, "text": "hi"}'),
    st.sampled_from(
        [
            _text({"type": "message", "id": "m1", "text": "a" * 4001}),
            _text({"type": "message", "id": "m1", "text": " \n\t "}),
            _text({"type": "message", "id": ["m"], "text": "hi"}),
            _text({"type": "message", "id": "m" * 5000, "text": "hello there"}),
            Frame(b'{"type": "message", "id": "e", "text": "\\ud83d\\ude00 thanks"}'),
        ]
    ),
)
auth_junk = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("auth")},
        optional={"token": json_values, "agent": json_values},
    ).map(_text),
    _lone('{"type": "auth", "token": LONE}'),
    _lone('{"type": "auth", "token": "' + TOKEN + '", "agent": {"name": LONE}}'),
    st.sampled_from(
        [
            _text({"type": "auth", "token": TOKEN + "\x00"}),
            _text({"type": "auth", "token": TOKEN, "agent": {"id": ["x"], "name": {"a": 1}}}),
            _text({"type": "auth", "token": TOKEN, "agent": {"name": "x" * 10_000}}),
            _text({"type": "auth", "token": "\U0001f600" * 30}),
        ]
    ),
)
desk_action_junk = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["accept", "send", "resolve", "transfer", "dance"])},
        optional={
            "conversation": json_values,
            "text": json_values,
            "target": json_values,
            "disposition": json_values,
        },
    ).map(_text),
    _lone('{"type": "accept", "conversation": LONE}'),
    _lone('{"type": "resolve", "conversation": "desk_x", "disposition": LONE}'),
    _lone('{"type": "transfer", "conversation": "desk_x", "target": LONE}'),
)


def _is_reply(frame: Any) -> bool:
    return isinstance(frame, dict) and frame.get("type") in (
        "error",
        "welcome",
        "ack",
        "ready",
        "history",
        "resume",
        "rated",
    )


@dataclass(frozen=True)
class Socket:
    path: str
    opening: tuple[Frame, ...]  # sent (and answered) before the fuzzed frame
    opened: tuple[str, ...]  # the type of the answer to each opening frame
    probe: Frame  # gets an error frame on a socket that is still open


WEBCHAT = Socket("/webchat/ws", (), (), _text({"type": "dance"}))
HELLO = _text({"type": "hello", "resume": None, "user": None})
WEBCHAT_HELLO = Socket("/webchat/ws", (HELLO,), ("welcome",), _text({"type": "dance"}))
# With a session behind it (history, rating and rotate then read and write the store).
WEBCHAT_SPOKEN = Socket(
    "/webchat/ws",
    (HELLO, _text({"type": "message", "id": "o1", "text": "what is my balance"})),
    ("welcome", "ack"),
    _text({"type": "dance"}),
)
DESK = Socket("/agent/ws", (), (), _text({"type": "dance"}))
DESK_SIGNED_IN = Socket(
    "/agent/ws",
    (_text({"type": "auth", "token": TOKEN, "agent": {"name": "Fuzz"}}),),
    ("ready",),
    _text({"type": "accept", "conversation": "desk_nobody"}),
)

CASES: dict[str, tuple[Socket, st.SearchStrategy[Frame]]] = {
    "web chat, first frame not JSON": (WEBCHAT, not_json),
    "web chat, protocol junk": (WEBCHAT, protocol_junk),
    "web chat, bad hello": (WEBCHAT, hello_junk),
    "web chat, bad message after hello": (WEBCHAT_HELLO, message_junk),
    "web chat, anything after hello": (WEBCHAT_HELLO, not_json | hello_junk),
    "web chat, history, typing, rotate, rating": (WEBCHAT_HELLO, after_hello_junk),
    "web chat, the same once a message made a session": (WEBCHAT_SPOKEN, after_hello_junk),
    "desk, first frame not JSON": (DESK, not_json),
    "desk, protocol junk": (DESK, protocol_junk),
    "desk, bad sign-in": (DESK, auth_junk),
    "desk, bad actions when signed in": (DESK_SIGNED_IN, desk_action_junk | not_json),
}


@dataclass
class World:
    run: Running
    port: int
    log: Records


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with fuzzed_deployment(tmp_path_factory.mktemp("fuzz-ws")) as (run, _fake, records):
        yield World(run, int(run.base.rsplit(":", 1)[1]), records)


async def _one_connection(port: int, socket: Socket, frame: Frame) -> list[Outcome]:
    """Open, fuzz, probe, close; how the server answered at each step."""
    sock = await RawSocket.connect(port, socket.path)
    outcomes: list[Outcome] = []
    try:
        for opening, answer in zip(socket.opening, socket.opened, strict=True):
            sock.send_frame(opening.opcode, opening.payload)
            opened = await exchange(sock, lambda f, answer=answer: f.get("type") == answer)
            assert opened.close_code is None, opened
        sock.send_frame(frame.opcode, frame.payload, fin=frame.fin, rsv=frame.rsv)
        if frame.fin and not _unanswered(socket, frame):
            # (a fragment gets no answer: the probe is what breaks the protocol)
            outcomes.append(await exchange(sock, _is_reply))
            if outcomes[-1].close_code is not None:
                return outcomes
        sock.send_frame(socket.probe.opcode, socket.probe.payload)
        outcomes.append(await exchange(sock, lambda f: f.get("type") == "error"))
        if outcomes[-1].close_code is not None:
            return outcomes
        sock.send_frame(0x8, (1000).to_bytes(2, "big"))
        outcomes.append(await exchange(sock, lambda f: False))
        return outcomes
    finally:
        await sock.close()


def _unanswered(socket: Socket, frame: Frame) -> bool:
    """A well-formed ``typing`` frame to the web chat: passed on, never answered."""
    if socket.path != "/webchat/ws":
        return False
    try:
        value = loads(frame.payload.decode("utf-8"))
    except (UnicodeDecodeError, MalformedPayload):
        return False
    return isinstance(value, dict) and value.get("type") == "typing"


def _fine(socket: Socket, frame: Frame, outcomes: list[Outcome]) -> bool:
    *steps, last = outcomes
    if last.abnormal or not all(proper(o) for o in steps):
        return False
    if last.close_code is None or last.close_code == 1000:
        # still open after the probe, then closed cleanly when we asked; or closed by the
        # server in answer to a close frame of ours
        return len(outcomes) == 3 - _unanswered(socket, frame) or frame.opcode == 0x8
    return proper(last)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", list(CASES))
async def test_bad_frames_get_an_error_frame_or_a_proper_close(world: World, case: str) -> None:
    socket, frames = CASES[case]
    failures = []
    for frame in draw(frames, EXAMPLES):
        outcomes = await _one_connection(world.port, socket, frame)
        if not _fine(socket, frame, outcomes):
            failures.append((frame.opcode, frame.payload[:120], outcomes))
    assert not failures, f"{len(failures)} of {EXAMPLES}: {failures[:3]}"
    await normal_chat_works(world.run.ws_base)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_lone_surrogate_in_hello_or_token_is_a_malformed_frame(world: World) -> None:
    """The inputs of issue 6 that closed the sockets with 1006, answered one by one."""
    chat_open = [None, None, 1000]  # error frame, the probe's error frame, our clean close
    # error frame, and a bad first frame before sign-in closes the socket (1008)
    desk_closed = [None, 1008]
    for socket, frame, closes in [
        (WEBCHAT, Frame(b"[" * 20_000), chat_open),
        (WEBCHAT, Frame(b'{"type": "hello", "resume": "wc_\\ud800.x"}'), chat_open),
        (WEBCHAT_HELLO, Frame(b'{"type": "message", "id": "1", "text": "\\udfff"}'), chat_open),
        (DESK, Frame(b"[" * 20_000), desk_closed),
        (DESK, Frame(b'{"type": "auth", "token": "\\ud800"}'), desk_closed),
    ]:
        outcomes = await _one_connection(world.port, socket, frame)
        assert outcomes[0].frames[-1]["code"] == "malformed_frame", outcomes
        assert [o.close_code for o in outcomes] == closes, outcomes
