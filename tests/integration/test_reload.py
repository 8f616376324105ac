"""``midtier reload`` (SIGHUP) swaps routing and the intent classifier of a running server
while conversations go on: no message lost, none answered with an error, the new rules and
model in use at once; a config that fails validation is refused and the old one stays."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from support.process import MIDTIER, MidtierProcess, midtier_process
from support.server import DEFAULT_CONFIG, REPO, Chatter, Frames, free_port

from connector.cli import main

FEES = "what fees do you charge?"
FEES_ANSWER = "Sending money to friends in the same currency is free"  # bots/faq.py ANSWERS["fees"]
PASSED_ON = "passing you to a support agent"
NEW_WORD = "zorblax"
_WAITING = (
    "... reloading midtier (pid "  # in no training example, until the reload adds it to greet
)


@asynccontextmanager
async def _conversation(base: str) -> AsyncIterator[tuple[Frames, Chatter]]:
    url = base.replace("http://", "ws://") + "/webchat/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        user = Frames(ws)
        await user.send(type="hello", resume=None, user=None)
        await user.expect("welcome")
        yield user, Chatter(user)


async def _first_reply(base: str, text: str) -> dict[str, object]:
    """The first message a new conversation gets back for ``text`` (bot or system)."""
    async with _conversation(base) as (user, me):
        await me.say(text)
        return await user.expect("message")


async def _reload(data: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MIDTIER, "reload", "--data", str(data), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Traffic:
    """Users asking about fees again and again until told to stop, then a few times more."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered: list[str] = []
        self.flowing = asyncio.Event()  # set once 20 messages were answered
        self.stop = asyncio.Event()

    async def talk(self, base: str, after_stop: int = 5) -> None:
        async with _conversation(base) as (user, me):
            left = after_stop
            while left > 0:
                self.sent += 1
                await me.say(FEES)
                reply = await user.expect("message", within=30)
                self.answered.append(str(reply["text"]))
                if len(self.answered) >= 20:
                    self.flowing.set()
                left -= self.stop.is_set()


def _errors(server: MidtierProcess) -> list[str]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [r["msg"] for r in lines if r["level"] in ("error", "critical")]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    return config


async def test_a_reload_under_traffic_loses_nothing_and_takes_effect_at_once(
    tmp_path: Path, config: Path
) -> None:
    data = tmp_path / "data"
    async with midtier_process(data, free_port(), config) as server:
        assert PASSED_ON in str((await _first_reply(server.base, NEW_WORD))["text"])
        assert (await _first_reply(server.base, "thanks a lot"))["speaker"] == "bot"
        traffic = Traffic()
        talk = [asyncio.create_task(traffic.talk(server.base)) for _ in range(4)]
        await asyncio.wait_for(traffic.flowing.wait(), 60)
        nlu = config / "nlu" / "payments.yml"
        nlu.write_text(nlu.read_text().replace("    - hi\n", f"    - hi\n    - {NEW_WORD}\n", 1))
        routing = config / "routing.yaml"
        text = routing.read_text().replace("      - thanks\n", "", 1)
        routing.write_text(text.replace("talk_to_human]", "talk_to_human, thanks]", 1))
        code, out, err = await _reload(data)
        assert (code, out) == (0, "reloaded: routing.yaml, intent classifier retrained\n"), err
        traffic.stop.set()
        await asyncio.gather(*talk)
        # Every message sent while the model and rules were swapped was answered, by the bot.
        assert len(traffic.answered) == traffic.sent >= 40
        assert {t for t in traffic.answered if not t.startswith(FEES_ANSWER)} == set()
        # The new model knows the new word; the new routes send thanks to the people.
        greeting = await _first_reply(server.base, NEW_WORD)
        assert greeting["speaker"] == "bot"
        assert PASSED_ON in str((await _first_reply(server.base, "thanks a lot"))["text"])
        assert await server.stop() == 0
    assert _errors(server) == []
    status = json.loads((data / "reload.json").read_text())
    assert (status["seq"], status["ok"]) == (1, True)


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        (
            lambda text: text.replace("fallback: agents", "fallback: nobody", 1),
            "error: routing.yaml: fallback: 'nobody' is not a provider in providers.yaml",
        ),
        (lambda text: text + "\nroutes: [unclosed\n", "error: routing.yaml: line"),
        (
            lambda text: text.replace("routes:\n", "routes:\n  ghost: {intents: [x]}\n", 1),
            "error: routing.yaml: routes.ghost: no provider of this name in providers.yaml",
        ),
    ],
    ids=["unknown-fallback", "bad-yaml", "unknown-provider"],
)
async def test_a_config_that_fails_is_refused_with_its_errors_and_the_old_one_serves_on(
    tmp_path: Path, config: Path, broken: object, error: str
) -> None:
    data = tmp_path / "data"
    routing = config / "routing.yaml"
    async with midtier_process(data, free_port(), config) as server:
        assert callable(broken)
        routing.write_text(broken(routing.read_text()))
        code, out, err = await _reload(data)
        assert (code, out) == (2, "")
        assert error in err
        assert err.endswith("the running configuration stays in place\n")
        reply = await _first_reply(server.base, FEES)
        assert str(reply["text"]).startswith(FEES_ANSWER)
        assert json.loads((data / "reload.json").read_text())["ok"] is False


def test_reload_without_a_running_server_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["reload", "--data", str(data)]) == 1
    assert capsys.readouterr().err == (
        f"error: no running midtier for {data} (no {data / 'midtier.pid'})\n"
    )
    data.mkdir()
    (data / "midtier.pid").write_text("999999999\n")  # above any pid_max: no such process
    assert main(["reload", "--data", str(data)]) == 1
    assert "is left from pid 999999999" in capsys.readouterr().err


async def test_a_reload_with_nothing_changed_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Named relative to the server's working directory, as `midtier run` is usually given it.
    async with midtier_process(data, free_port(), Path("bot_configs")):
        code, out, err = await _reload(data)
        assert (code, out, err.startswith(_WAITING)) == (0, "reloaded: nothing changed\n", True)
