"""The channel contract: every webhook channel, against a real midtier and a fake platform.

Each kind in ``adapters.channels.REGISTRY`` that takes webhooks has a kit
(``support.channel_kits``); the same tests run for all of them: a signed message is
recorded and answered once, a platform retry (also one that arrives while the first is being
processed) reaches the bot once, forged / cut / oversized / wrong-method requests are refused
without touching state, settings are strict and name their file and key, and a platform
that fails for a while gets its replies late but in full.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.channel_kits import KITS, ChannelKit
from support.channel_world import World, channel_config, channel_world, environment

from adapters.channels import REGISTRY
from connector.checks import check_config
from connector.registry import import_dotted

KINDS = sorted(KITS)


def _takes_webhooks(path: str) -> bool:
    cls = import_dotted(path)
    return callable(getattr(cls, "verify", None)) and callable(getattr(cls, "parse", None))


def test_every_webhook_channel_has_a_kit() -> None:
    webhook_kinds = {kind for kind, path in REGISTRY.items() if _takes_webhooks(path)}
    assert webhook_kinds, "no webhook channel is registered"
    assert webhook_kinds <= set(KITS), (
        f"channels without a contract kit: {webhook_kinds - set(KITS)}"
    )


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_channel_declares_strict_settings(kind: str) -> None:
    cls = import_dotted(REGISTRY[kind])
    assert cls.Settings.model_config.get("extra") == "forbid"


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest) -> ChannelKit:
    return KITS[request.param]()


@pytest.fixture
async def world(tmp_path: Path, kit: ChannelKit) -> AsyncIterator[World]:
    async with channel_world(tmp_path, kit) as world:
        yield world


async def _user_lines(world: World) -> list[str | None]:
    lines: list[str | None] = []
    for session in await world.sessions():
        lines += [
            e.text
            for e in await world.run.engine.store.transcript(session.id)
            if e.speaker == "user"
        ]
    return lines


async def test_a_signed_message_is_recorded_and_answered(world: World) -> None:
    # A user label of digits: some platforms' user ids are numbers (Telegram's).
    status, _, _ = await world.post(world.message("hi", user="100"))
    assert 200 <= status < 300
    user = world.user("100")
    reply = await user.expect(lambda t: "Acme Pay help assistant" in t)
    [session] = await world.sessions()
    assert session.user_id.endswith("100") or "100" in session.channel_conversation_id
    assert session.claims["verified"] is True and session.claims["channel"] == world.name
    assert reply.text


async def test_a_platform_retry_reaches_the_bot_once(world: World) -> None:
    first = world.message("hi", user="u-200", message_id="mid-retried")
    # The retry arrives while the first delivery is still being processed, then once more.
    answers = await asyncio.gather(world.post(first), world.post(first))
    assert all(200 <= status < 300 for status, _, _ in answers)
    await world.user("u-200").expect(lambda t: "Acme Pay help assistant" in t)
    status, _, _ = await world.post(first)
    assert 200 <= status < 300
    await world.run.engine.inbound.idle()
    assert await _user_lines(world) == ["hi"]
    answered = [r for r in world.kit.replies(world.platform) if "help assistant" in r.text]
    assert len(answered) == 1


async def test_a_message_longer_than_midtier_keeps_is_cut_not_lost(world: World) -> None:
    limit = world.run.engine.config.midtier.limits.max_text_chars
    long = "dispute " * (limit // 8 + 50)
    status, _, _ = await world.post(world.message(long, user="u-400"))
    assert 200 <= status < 300
    await world.run.engine.inbound.idle()
    [line] = await _user_lines(world)
    assert line is not None and len(line) == limit and line.endswith("…")
    assert long.startswith(line[:-1])


async def test_a_forged_request_is_refused_and_touches_nothing(world: World) -> None:
    status, body, _ = await world.post(world.kit.forged(world.message("hi")))
    assert status in (401, 403), body
    assert await world.sessions() == []
    assert world.kit.replies(world.platform) == []


async def test_a_body_cut_short_is_refused_and_touches_nothing(world: World) -> None:
    call = world.message("hello there, this is a message")
    status, body, _ = await world.post(call.with_body(call.body[: len(call.body) // 2]))
    expected = (401, 403) if world.kit.signs_body else (400,)
    assert status in expected, body
    assert await world.sessions() == []


async def test_an_oversized_body_is_a_413(world: World) -> None:
    call = world.message("x")
    status, _, _ = await world.post(call.with_body(b"{" + b" " * 70_000 + b"}"))
    assert status == 413
    assert await world.sessions() == []


async def test_garbage_that_verifies_is_a_400_not_a_500(world: World) -> None:
    # Only channels that do not sign the body can be sent garbage that verifies.
    if world.kit.signs_body:
        call = world.message("x")
        status, _, _ = await world.post(call.with_body(b"\xff\xfe not json"))
        assert status in (400, 401, 403)
    else:
        call = world.message("x")
        for body in (b"\xff\xfe not json", b"[]", b'{"update_id": "x"}', b"null"):
            status, text, _ = await world.post(call.with_body(body))
            assert status in (200, 400), (body, status, text)
    assert await world.sessions() == []


async def test_wrong_method_is_a_405_and_an_unknown_channel_a_404(world: World) -> None:
    call = world.message("x")
    status, _, headers = await world.post(
        type(call)(body=call.body, headers=call.headers, method="PUT")
    )
    assert status == 405 and "POST" in headers.get("Allow", "")
    world.name, real = "no-such-channel", world.name
    try:
        status, _, _ = await world.post(call)
    finally:
        world.name = real
    assert status == 404


async def test_a_platform_that_fails_gets_its_replies_later(world: World) -> None:
    world.platform.fail_next(2, status=503)
    status, _, _ = await world.post(world.message("hi", user="u-300"))
    assert 200 <= status < 300
    reply = await world.user("u-300").expect(lambda t: "help assistant" in t, within=20)
    assert reply.text
    await world.run.engine.inbound.idle()
    # The platform holds the reply a moment before midtier has read its answer and marked
    # the entry done: wait for that delivery (flush waits for the one under way).
    [session] = await world.sessions()
    await world.run.engine.outbox.flush(world.name, session.channel_conversation_id)
    assert await world.run.engine.store.outbox_due(datetime.max.replace(tzinfo=UTC)) == []


def test_unknown_settings_and_missing_secrets_name_file_and_key(
    tmp_path: Path, kit: ChannelKit
) -> None:
    block = {**kit.settings("http://127.0.0.1:9"), "bogus": 1}
    config = channel_config(tmp_path, kit.kind, block)
    with environment(kit.env):
        problems = [str(e) for e in check_config(config)]
    assert f"midtier.yaml: channels.{kit.kind}.bogus: unknown key" in problems
    with environment(kit.env):
        for key in kit.env:
            del os.environ[key]  # put back by environment()
        problems = [str(e) for e in check_config(config)]
    assert any(
        p.startswith(f"midtier.yaml: channels.{kit.kind}.{kit.secret_key}: environment variable")
        for p in problems
    ), problems
