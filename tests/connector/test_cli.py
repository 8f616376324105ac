"""``midtier check`` and ``midtier sessions`` from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest
from support.process import midtier_process
from support.server import DEFAULT_CONFIG, REPO, free_port

from adapters.providers.bf_auth import KEY_FILE
from connector.cli import main
from connector.records import OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import DeliveryFailure, Leg, TranscriptEntry
from connector.store.sqlite import SqliteStore
from connector.store.sqlite_schema import SCHEMA_VERSION


def test_check_passes_on_the_default_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(DEFAULT_CONFIG)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


def test_check_prints_every_error_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = (config / "providers.yaml").read_text()
    providers = providers.replace("bot: bots.disputes:DisputesBot", "bot: bots.nope:Missing")
    providers = providers.replace("kind: agent_desk", "kind: pigeon_post")
    (config / "providers.yaml").write_text(providers)
    routing = (config / "routing.yaml").read_text().replace("- greet", "- say_hello")
    (config / "routing.yaml").write_text(routing)
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"3 problem(s) in {config}"
    assert any(
        line.startswith("error: providers.yaml: providers.agents.kind: unknown kind 'pigeon_post'")
        for line in err
    )
    assert any(
        line.startswith("error: providers.yaml: providers.disputes.bot: cannot import")
        for line in err
    )
    assert (
        "error: routing.yaml: routes.faq.intents[0]: intent 'say_hello' matches nothing "
        "in the NLU data" in err
    )


GOOD_PROVIDERS = """
  partner:
    kind: webhook
    url: https://partner.example.com/hook
    secret: ${PARTNER_SECRET}
    health_url: ${PARTNER_HEALTH_URL:-}
  orders:
    kind: rasa
    url: http://127.0.0.1:5005
    channel: callback
    callback_secret: ${PARTNER_SECRET}
    parse_intents: yes
  billing:
    kind: botframework
    endpoint: http://127.0.0.1:3979/api/messages
    auth: off
"""


def test_check_passes_with_a_provider_of_every_remote_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_SECRET", "partner-secret-0123456789")
    monkeypatch.delenv("PARTNER_HEALTH_URL", raising=False)
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    with (config / "providers.yaml").open("a") as providers:
        providers.write(GOOD_PROVIDERS)
    assert main(["check", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"{config}: ok"


BAD_PROVIDERS = """
  partner:
    kind: webhook
    url: partner.example.com/hook
    colour: blue
  orders:
    kind: rasa
    url: http://127.0.0.1:5005
    channel: socketio
    parse_intents: maybe
  billing:
    kind: botframework
    app_id: 6f1c2a9e-0d4b-4c59-9a55-3b8e2f1d7c01
"""


def test_check_names_file_and_key_of_every_bad_provider_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    with (config / "providers.yaml").open("a") as providers:
        providers.write(BAD_PROVIDERS)
    assert main(["check", "--config", str(config)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: providers.yaml: providers.partner.url: Value error, expected an http(s) URL",
        "error: providers.yaml: providers.partner.secret: Field required",
        "error: providers.yaml: providers.partner.colour: unknown key",
        "error: providers.yaml: providers.orders.channel: Input should be 'rest' or 'callback'",
        "error: providers.yaml: providers.orders.parse_intents: "
        "Input should be a valid boolean, unable to interpret input",
        "error: providers.yaml: providers.billing.endpoint: Field required",
        "error: providers.yaml: providers.billing.auth: Value error, "
        "auth on needs app_id and app_password",
        f"7 problem(s) in {config}",
    ]


def test_check_names_labels_of_intents_that_do_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    routing = (config / "routing.yaml").read_text()
    (config / "routing.yaml").write_text(
        routing.replace("  report_fraud: reported", "  fraud: reported")
    )
    assert main(["check", "--config", str(config)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: routing.yaml: labels.fraud: no intent of this name in the NLU data"
    )


def test_check_reports_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    (config / "routing.yaml").write_text("fallback: [\n")
    assert main(["check", "--config", str(config)]) == 1
    assert "error: routing.yaml: line" in capsys.readouterr().err


async def _seed(path: Path) -> str:
    store = SqliteStore(path)
    await store.start()
    session, _ = await store.find_or_create("webchat", "wc_1", "u_1")
    session.legs.append(
        Leg(
            channel="webchat",
            channel_conversation_id="wc_1",
            provider="faq",
            provider_conversation_id="bb_1",
            open_reason="faq serves greet",
        )
    )
    await store.save(session)
    await store.append_transcript(session.id, TranscriptEntry(speaker="user", text="hello"))
    decision = RouteDecision(
        action="switch",
        provider="agents",
        previous="faq",
        intent="report_fraud",
        confidence=0.74,
        summary="reported fraud",
        reason="agents serves report_fraud; faq does not",
    )
    await store.append_decision(session.id, decision)
    await store.close()
    return session.id


def test_sessions_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session_id = asyncio.run(_seed(tmp_path / "midtier.db"))
    assert main(["sessions", "list", "--data", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == session_id and row["current_provider"] == "faq"
    assert main(["sessions", "show", session_id, "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "provider  faq" in out and "faq serves greet" in out and "hello" in out
    # a decision reads for people first, with the router's detail after it
    assert "[report_fraud 0.74] reported fraud (agents serves report_fraud; faq does not)" in out
    assert main(["sessions", "show", "mts_nope", "--data", str(tmp_path)]) == 1
    assert "no session 'mts_nope'" in capsys.readouterr().err
    assert main(["sessions", "list", "--data", str(tmp_path / "empty")]) == 1
    assert "no session store" in capsys.readouterr().err


async def _seed_failures(path: Path) -> tuple[str, str]:
    """A session with a refused reply and one still waiting, and one without either."""
    session_id = await _seed(path)
    store = SqliteStore(path)
    await store.start()
    session = await store.get(session_id)
    assert session is not None
    session.record_failure(
        DeliveryFailure(
            channel="webchat",
            activity_id="act-refused",
            excerpt="Your card is blocked",
            reason="webchat send: HTTP 403 blocked",
            attempts=1,
            outcome="rejected",
        )
    )
    await store.save(session)
    await store.outbox_put(
        OutboxEntry(
            id="act-waiting",
            session_id=session_id,
            channel="webchat",
            conversation_id="wc_1",
            activity={"type": "message", "text": "still coming"},
        )
    )
    await store.outbox_retry("act-waiting", datetime(2030, 1, 1, 12, 0, tzinfo=UTC), "HTTP 503")
    quiet, _ = await store.find_or_create("webchat", "wc_2", "u_2")
    await store.close()
    return session_id, quiet.id


def test_sessions_show_lists_delivery_failures_and_waiting_replies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id, quiet_id = asyncio.run(_seed_failures(tmp_path / "midtier.db"))
    assert main(["sessions", "show", session_id, "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "outbox    1 waiting; oldest tried 1x, next 2030-01-01T12:00:00: HTTP 503" in out
    assert "on webchat / wc_1" in out
    assert "webchat    rejected after 1 try: webchat send: HTTP 403 blocked" in out
    assert "act-refused  Your card is blocked" in out
    assert main(["sessions", "show", session_id, "--data", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["outbox_waiting"] == 1 and shown["outbox_oldest"]["id"] == "act-waiting"
    assert shown["session"]["delivery_failures"][0]["outcome"] == "rejected"
    assert main(["sessions", "show", quiet_id, "--data", str(tmp_path)]) == 0
    assert "outbox    0 waiting\n" in capsys.readouterr().out
    assert main(["sessions", "list", "--failed", "--json", "--data", str(tmp_path)]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [session_id]


def test_run_refuses_an_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    (config / "routing.yaml").write_text("fallback: nobody\nroutes: {}\n")
    assert main(["run", "--config", str(config), "--data", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: routing.yaml: fallback: 'nobody' is not a provider in providers.yaml"
    )
    assert not (tmp_path / "data").exists()  # nothing was started or written


# ------------------------------------------------------------ the real command, as a process

MIDTIER = str(Path(sys.executable).with_name("midtier"))  # the installed console script


def _env() -> dict[str, str]:
    """The environment of the console script: it runs this checkout's code, wherever the
    package was installed from."""
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "MIDTIER_AGENT_TOKEN": "test-agent-token-0123456789"}


def _midtier(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MIDTIER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_env(), **(env or {})},
        cwd=cwd,
        check=False,
    )


def test_version_comes_from_the_package_metadata() -> None:
    done = _midtier("--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"midtier {version('midtier')}\n"


BOTFRAMEWORK_PROVIDERS = """
  billing:
    kind: botframework
    endpoint: http://127.0.0.1:3979/api/messages
    app_id: 6f1c2a9e-0d4b-4c59-9a55-3b8e2f1d7c01
    app_password: ${BILLING_BOT_PASSWORD}
  emulated:
    kind: botframework
    endpoint: http://127.0.0.1:3980/api/messages
    auth: off
"""


def test_check_as_a_process_passes_with_botframework_providers_and_opens_nothing(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    with (config / "providers.yaml").open("a") as providers:
        providers.write(BOTFRAMEWORK_PROVIDERS)
    password = {"BILLING_BOT_PASSWORD": "billing-bot-password-0123456789"}
    done = _midtier("check", "--config", str(config), env=password, cwd=tmp_path)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", f"{config}: ok\n")
    # No data directory, no signing key: the shared Connector was built, not started.
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


async def test_run_with_botframework_providers_serves_their_connector(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    with (config / "providers.yaml").open("a") as providers:
        providers.write(BOTFRAMEWORK_PROVIDERS)
    password = "billing-bot-password-0123456789"
    env = {"BILLING_BOT_PASSWORD": password}
    async with (
        midtier_process(tmp_path / "data", free_port(), config, env) as server,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(server.base + "/v1/.well-known/openidconfiguration") as response:
            assert response.status == 200
            metadata = await response.json()
        assert metadata["token_endpoint"] == server.base + "/adfs/oauth2/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": "6f1c2a9e-0d4b-4c59-9a55-3b8e2f1d7c01",
            "client_secret": password,
        }
        async with http.post(metadata["token_endpoint"], data=form) as response:
            assert response.status == 200
            assert (await response.json())["token_type"] == "Bearer"
        assert await server.stop() == 0
    assert (tmp_path / "data" / KEY_FILE).exists()  # the key bots cache outlives the process


async def _seed_long(path: Path) -> str:
    """A session whose ``show`` output is far larger than any pipe buffer."""
    session_id = await _seed(path)
    store = SqliteStore(path)
    await store.start()
    for n in range(100):
        entry = TranscriptEntry(speaker="bot", text=f"line {n} " + "x" * 20_000)
        await store.append_transcript(session_id, entry)
    await store.close()
    return session_id


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "text"])
def test_output_to_a_closed_pipe_ends_quietly(tmp_path: Path, output: list[str]) -> None:
    session_id = asyncio.run(_seed_long(tmp_path / "midtier.db"))
    args = [MIDTIER, "sessions", "show", session_id, "--data", str(tmp_path), *output]
    pipe = subprocess.PIPE
    with subprocess.Popen(args, stdout=pipe, stderr=pipe, env=_env()) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # what `| head -1` reads before it goes away
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert first == (b"{\n" if output else f"session   {session_id}  (active)\n".encode())
    assert err == b""  # no BrokenPipeError, no traceback
    assert code == 128 + signal.SIGPIPE


def _config_with_faq_bot(tmp_path: Path, bot: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    providers = (config / "providers.yaml").read_text()
    (config / "providers.yaml").write_text(providers.replace("bot: bots.faq:FaqBot", f"bot: {bot}"))
    return config


@pytest.mark.parametrize(
    ("bot", "module", "error"),
    [
        (
            "bots.nope:Missing",
            None,
            "error: providers.yaml: providers.faq.bot: cannot import 'bots.nope:Missing': "
            "ModuleNotFoundError(\"No module named 'bots.nope'\")",
        ),
        (
            "bots.broken:Broken",
            "import no_such_dependency\n",
            "error: providers.yaml: providers.faq.bot: cannot import 'bots.broken:Broken': "
            "ModuleNotFoundError(\"No module named 'no_such_dependency'\")",
        ),
        (
            "bots.broken:Broken",
            "class Broken:\n    def __init__(self):\n        raise RuntimeError('no database')\n",
            "error: providers.yaml: providers.faq.bot: 'bots.broken:Broken'() failed: "
            "RuntimeError('no database')",
        ),
    ],
    ids=["missing-module", "failing-import", "failing-constructor"],
)
def test_run_with_a_broken_bot_prints_one_error_and_exits(
    tmp_path: Path, bot: str, module: str | None, error: str
) -> None:
    config = _config_with_faq_bot(tmp_path, bot)
    if module is not None:
        (config / "bots" / "broken.py").write_text(module)
    data = tmp_path / "data"
    port = str(free_port())
    done = _midtier("run", "--config", str(config), "--data", str(data), "--port", port)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [error]  # one line, no traceback
    assert done.stdout == ""
    assert not data.exists()  # it stopped before opening the store or serving anything


def test_run_on_a_store_of_a_newer_version_prints_one_error_and_exits(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "midtier.db") as db:
        db.execute("PRAGMA user_version = 999")
    db.close()
    done = _midtier("run", "--data", str(data), "--port", str(free_port()))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {data / 'midtier.db'}: schema version: 999 was written by a newer midtier"
        f" (this one knows {SCHEMA_VERSION}); upgrade midtier or use another store file"
    ]
    assert "Traceback" not in done.stderr


def test_run_on_a_port_in_use_says_so_and_exits(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _midtier("run", "--data", str(tmp_path / "data"), "--port", str(port))
    assert done.returncode == 1
    assert "error: cannot start:" in done.stderr and "address already in use" in done.stderr
    assert "Traceback" not in done.stderr
