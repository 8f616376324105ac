"""The web chat's frames as they go on the socket: JSON text, whatever the text holds."""

from __future__ import annotations

import json

from adapters.channels.webchat_frames import encode


def test_a_frame_is_utf8_json_that_reads_back_as_it_was() -> None:
    frame = {"type": "message", "text": 'Grüße 👋 "quoted"\n', "seq": 3, "from": {"id": "faq"}}
    data = encode(frame)
    assert json.loads(data.decode("utf-8")) == frame


def test_a_lone_surrogate_is_written_as_an_escape_rather_than_failing_the_frame() -> None:
    frame = {"type": "message", "text": "half \ud83d of an emoji"}
    data = encode(frame)
    assert data.isascii()
    assert json.loads(data.decode("utf-8")) == frame
