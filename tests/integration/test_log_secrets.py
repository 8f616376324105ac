"""No secret reaches the logs of a real ``midtier run``, whatever it is sent.

The server runs as a subprocess with every credential in its environment (provider
credentials, a bot's app password, webhook secrets, the Rasa token and callback secret, the
desk token). The test opens real conversations to the remote providers, fuzzes every route
(``support.fuzz.routes``), and sends requests and frames that carry the secrets themselves
where a log line could quote them: in bodies read as the next request for want of a
Content-Length, in broken chunks, in headers with bad bytes, in the request line, in query
strings. Then it reads everything the process wrote.

Request bodies are never logged either: a marker sent in accepted bodies (a web chat
message, a Connector activity, signed webhook and Rasa callbacks) must not show up, even at
``--log-level debug``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from support.fuzz import (
    EXAMPLES,
    draw,
    routes,
    secret_frames,
    secret_requests,
)
from support.fuzz_world import (
    CHANNEL_KITS,
    ENV,
    SECRETS,
    Keys,
    fakes,
    normal_chat_works,
    open_conversations,
    write_config,
)
from support.raw import (
    RawSocket,
    exchange,
    send,
)
from support.server import REPO, Chatter, Frames, free_port

from adapters.botside.signing import sign

pytestmark = pytest.mark.slow

MIDTIER = REPO / ".venv" / "bin" / "midtier"
MARKER = "body-marker-Vh47Ncq"


async def _bodies_with_the_marker(base: str, keys: Keys) -> None:
    """Accepted requests whose bodies carry MARKER."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(base.replace("http://", "ws://") + "/webchat/ws") as ws,
    ):
        client = Frames(ws)
        await client.send(type="hello", resume=None, user=None)
        await client.expect("welcome")
        await Chatter(client).say(f"hello {MARKER}")
    async with aiohttp.ClientSession() as http:
        activity = {"type": "message", "text": f"from the bot {MARKER}"}
        async with http.post(
            f"{base}/v3/conversations/{keys.remote}/activities",
            json=activity,
            headers={"Authorization": f"Bearer {keys.bearer}"},
        ) as r:
            assert r.status == 200, await r.text()
        body = json.dumps({"conversation": keys.partner, "activities": [activity]}).encode()
        headers = {"Content-Type": "application/json", **sign(ENV["FUZZ_PARTNER_SECRET"], body)}
        async with http.post(f"{base}/webhooks/providers/partner", data=body, headers=headers) as r:
            assert r.status == 202, await r.text()
        message = {"recipient_id": keys.orders, "text": f"rasa says {MARKER}"}
        async with http.post(
            f"{base}/rasa/orders/callback",
            json=message,
            headers={"Authorization": f"Bearer {ENV['FUZZ_RASA_SECRET']}"},
        ) as r:
            assert r.status == 200, await r.text()


async def _until_healthy(base: str, proc: asyncio.subprocess.Process, within: float = 60) -> None:
    async with asyncio.timeout(within), aiohttp.ClientSession() as http:
        while True:
            assert proc.returncode is None, "midtier run exited"
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # polling a starting server, under the deadline above


async def test_no_secret_reaches_the_logs_of_midtier_run(tmp_path: Path) -> None:
    async with fakes() as fake:
        config = write_config(tmp_path, fake.base)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = await asyncio.create_subprocess_exec(
            str(MIDTIER),
            "run",
            "--config",
            str(config),
            "--data",
            str(tmp_path / "data"),
            "--port",
            str(port),
            "--log-level",
            "debug",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **ENV},
        )
        assert proc.stdout is not None and proc.stderr is not None
        output = asyncio.gather(proc.stdout.read(), proc.stderr.read())
        try:
            await _until_healthy(base, proc)
            keys = await open_conversations(base, fake)
            await _bodies_with_the_marker(base, keys)
            statuses: list[int | None] = []
            for strategy in routes(keys).values():
                for request in draw(strategy, max(EXAMPLES // 4, 10)):
                    statuses.append((await send(port, request)).status)
            for request in draw(secret_requests(), EXAMPLES * 2):
                statuses.append((await send(port, request)).status)
            for path, payload in draw(secret_frames(), EXAMPLES):
                sock = await RawSocket.connect(port, path)
                sock.send_frame(0x1, payload)
                outcome = await exchange(sock, lambda f: f.get("type") == "error")
                assert not outcome.abnormal, outcome
                await sock.close()
            # A signed message on every webhook channel: parsed, routed, answered, and the
            # reply refused by the platform (the fakes answer 404), all of it logged.
            async with aiohttp.ClientSession() as http:
                for value in ENV.values():  # every secret once as a path the access log keeps
                    async with http.get(f"{base}/{quote(value, safe='')}") as answer:
                        statuses.append(answer.status)
                for kind, kit in CHANNEL_KITS.items():
                    url = f"{base}/channels/{kind}"
                    call = kit.message(url, "hi", user="12345", message_id="777")
                    async with http.post(url, data=call.body, headers=call.headers) as answer:
                        statuses.append(answer.status)
                    forged = kit.forged(call)
                    async with http.post(url, data=forged.body, headers=forged.headers) as answer:
                        statuses.append(answer.status)
            await normal_chat_works(base.replace("http://", "ws://"))
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                stdout, stderr = await output
                await proc.wait()
    assert not [s for s in statuses if s is not None and s >= 500 and s != 501]
    text = (stdout + stderr).decode("utf-8", "replace")
    leaked = [name for name, value in ENV.items() if value in text]
    assert not leaked, f"secrets of {leaked} are in the log"
    assert all(secret not in text for secret in SECRETS)
    assert "Traceback" not in text
    assert MARKER not in text
    lines = stderr.decode().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON record
    assert stdout == b""
    # aiohttp refused requests whose error text quotes their bytes: logged, one line each
    refused = [r for r in records if r["msg"].startswith("Error handling request")]
    assert refused and all("exc" not in r for r in refused)
    assert any(r.get("event") == "bad_request" and r["level"] == "warning" for r in refused)
    # The channels' replies were refused by their (fake) platforms, and that was logged.
    failed = " ".join(r["msg"] for r in records if r.get("event") == "delivery_failed")
    for kind in ("messenger", "slack", "telegram", "twilio", "whatsapp"):
        assert f"channel {kind} " in failed, kind
