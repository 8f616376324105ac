"""Whatever a verified platform posts, every webhook channel answers under 500.

One real midtier with every webhook channel of ``support.channel_kits`` configured against
one fake platform. Each channel gets hypothesis-generated bodies *signed as the platform
signs them* (so they pass verification and reach the parsers): its own valid message with
one field swapped for a value of the wrong type, lone surrogates, deep nesting, invalid
UTF-8, random bytes, forms with odd fields. Nothing may answer 5xx or log a crash, and
afterwards a real message on each channel is still answered.

``MIDTIER_FUZZ_EXAMPLES`` (default 40) is the number of bodies per channel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import hypothesis.strategies as st
import pytest
import pytest_asyncio
from support.channel_kits import KITS, ChannelKit
from support.channel_world import channel_config, environment
from support.fake_platform import FakePlatform, fake_platform
from support.fuzz import EXAMPLES, deep_json, draw, invalid_utf8, lone_surrogate_json, wrong_types
from support.fuzz_world import Records
from support.server import AGENT_TOKEN, Running, serve

KINDS = sorted(KITS)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += _paths(inner, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return copy


def bodies(valid: bytes) -> st.SearchStrategy[bytes]:
    """Bodies near a platform's valid one: a JSON tree with one subtree swapped, or a form
    with one field changed, or nothing like either."""
    junk = st.one_of(invalid_utf8, deep_json(), st.binary(max_size=200), lone_surrogate_json())
    try:
        doc = json.loads(valid)
    except ValueError:
        fields = parse_qsl(valid.decode(), keep_blank_values=True)
        names = [name for name, _ in fields] or ["Body"]
        odd = st.text(max_size=40) | st.sampled_from(["", "-1", "9" * 400, "\x00", "é" * 50])
        form = st.builds(
            lambda name, new: urlencode([(n, new if n == name else v) for n, v in fields]),
            st.sampled_from(names),
            odd,
        ).map(str.encode)
        return st.one_of(form, junk)
    paths = _paths(doc)
    swapped = st.builds(
        lambda path, new: json.dumps(_replace(doc, path, new)).encode(),
        st.sampled_from(paths),
        wrong_types,
    )
    # A leaf changed within its type (any text, any integer) keeps the payload valid enough
    # to go past the parser, into recording and routing.
    strings = [p for p in paths if isinstance(_get(doc, p), str)]
    numbers = [p for p in paths if type(_get(doc, p)) is int]
    retyped = st.builds(
        lambda path, new: json.dumps(_replace(doc, path, new)).encode(),
        st.sampled_from(strings or paths),
        st.text(max_size=80),
    ) | st.builds(
        lambda path, new: json.dumps(_replace(doc, path, new)).encode(),
        st.sampled_from(numbers or paths),
        st.integers(min_value=-(2**63), max_value=2**64),
    )
    return st.one_of(swapped, retyped, retyped, lone_surrogate_json(base=doc), junk)


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


messages = st.tuples(
    st.text(min_size=1, max_size=300),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.from_regex(r"[0-9]{1,9}", fullmatch=True),
)


class World:
    def __init__(self, run: Running, platform: FakePlatform, kits: dict[str, ChannelKit]) -> None:
        self.run = run
        self.platform = platform
        self.kits = kits

    def url(self, kind: str) -> str:
        return f"{self.run.base}/channels/{kind}"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("fuzz-channels")
    kits = {kind: KITS[kind]() for kind in KINDS}
    env = {"MIDTIER_AGENT_TOKEN": AGENT_TOKEN}
    for kit in kits.values():
        env.update(kit.env)
    with environment(env):
        async with fake_platform() as platform:
            config = tmp / "config"
            for kind, kit in kits.items():
                kit.prepare(platform)
                config = channel_config(tmp, kind, kit.settings(platform.base_url))
            async with serve(config, data_dir=tmp / "data") as run:
                yield World(run, platform, kits)


@pytest.fixture
def crashes() -> AsyncIterator[Records]:
    records = Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        yield records  # type: ignore[misc]
    finally:
        root.removeHandler(records)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("kind", KINDS)
async def test_signed_junk_gets_a_client_error_never_a_server_error(
    world: World, kind: str, crashes: Records
) -> None:
    kit = world.kits[kind]
    url = world.url(kind)
    valid = kit.message(url, "hello", user="fuzz-user", message_id="fuzz-1").body
    calls = [kit.sign_body(url, body) for body in draw(bodies(valid), EXAMPLES)]
    # Well-formed messages with any text, user and id: past the parser, into the core.
    calls += [
        kit.message(url, text, user=user, message_id=f"fuzz-{i}-{mid}")
        for i, (text, user, mid) in enumerate(draw(messages, EXAMPLES // 2))
    ]
    failures = []
    async with aiohttp.ClientSession() as http:
        for call in calls:
            async with http.post(url + call.query, data=call.body, headers=call.headers) as r:
                if r.status >= 500:
                    failures.append((call.body[:200], r.status, (await r.read())[:200]))
    assert failures == []
    crashed = [r for r in crashes.records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in crashed] == []
    # Still serving: a real message on this channel is answered.
    await world.run.engine.inbound.idle()
    before = len(kit.replies(world.platform))
    call = kit.message(url, "hi", user="after-fuzz", message_id=f"after-{kind}")
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=call.body, headers=call.headers) as r,
    ):
        assert r.status < 300
    await world.platform.wait_for(lambda _c: len(kit.replies(world.platform)) > before, within=15)
