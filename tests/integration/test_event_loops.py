"""``midtier run`` serves on asyncio's own event loop by default and on uvloop's with
``--loop uvloop``: the same web chat conversation, recorded and answered, on both."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aiohttp
import pytest
from support.process import midtier_process
from support.server import Chatter, Frames, free_port

from connector.cli import _event_loop, main


def _loop_in_log(log: str) -> str:
    """The event loop named by the server's start-up line (JSON log records)."""
    for line in log.splitlines():
        if line.startswith("{") and "serving" in (record := json.loads(line))["msg"]:
            return str(record["msg"]).rsplit("event loop: ", 1)[1].rstrip(")")
    raise AssertionError(f"no start-up line in the log: {log[-2000:]}")


@pytest.mark.parametrize(
    ("option", "loop"),
    [([], "asyncio"), (["--loop", "uvloop"], "uvloop"), (["--loop", "asyncio"], "asyncio")],
)
async def test_the_server_answers_on_the_event_loop_it_was_given(
    tmp_path: Path, option: list[str], loop: str
) -> None:
    data = tmp_path / "data"
    async with midtier_process(data, free_port(), args=[*option, "--log-level", "info"]) as server:
        url = server.base.replace("http://", "ws://") + "/webchat/ws"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            user = Frames(ws)
            await user.send(type="hello", resume=None, user=None)
            await user.expect("welcome")
            await Chatter(user).say("hi")
            answer = await user.expect("message", lambda f: f["speaker"] == "bot")
        assert answer["text"]
        assert await server.stop() == 0
        assert _loop_in_log(server.log()) == loop


def test_without_uvloop_the_default_serves_and_asking_for_uvloop_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what ``import uvloop`` sees uninstalled
    loop = _event_loop("asyncio")
    try:
        assert type(loop).__module__.split(".")[0] == "asyncio"
    finally:
        loop.close()
    with pytest.raises(ImportError):
        _event_loop("uvloop")
    data = tmp_path / "data"
    assert main(["run", "--loop", "uvloop", "--data", str(data), "--port", "1"]) == 2
    assert capsys.readouterr().err == (
        "error: --loop uvloop: uvloop is not installed (pip install 'midtier[uvloop]')\n"
    )
    assert not data.exists()  # refused before anything was started or written
