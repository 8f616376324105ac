"""The Rasa provider against a Rasa-compatible server on 127.0.0.1, and its payload mapping."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.doubles import KeywordClassifier
from support.providers import build, pooled, shared_http
from support.rasa_fake import FakeRasa

from adapters.providers.rasa import RasaProvider
from adapters.providers.rasa_mapping import CUSTOM_TYPE, intent_result, to_activities
from adapters.providers.rasa_nlu import RasaNluClassifier
from connector.activity import Activity, HandoffEventNames, status_event
from connector.context import SharedHttp
from connector.errors import ConfigErrors, ProviderError, ProviderTimeout
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession

TOKEN = "rasa-token-0123456789"


class Router:
    """Routes track_order and check_balance only."""

    def providers_for(self, intent: str) -> list[str]:
        return ["orders"] if intent in ("track_order", "check_balance") else []


class Host:
    """The bits of ProviderHost the provider uses, recording what it is given."""

    def __init__(self) -> None:
        self.classifier: Any = KeywordClassifier({"balance": "check_balance"})
        self.router = Router()
        self.activities: list[tuple[str, str, Activity]] = []

    async def provider_activity(self, provider: str, conversation: str, activity: Activity) -> None:
        self.activities.append((provider, conversation, activity))

    async def update_leg_data(self, provider: str, conversation: str, data: dict[str, Any]) -> None:
        return None


def _provider(host: Host, http: SharedHttp | None = None, **settings: Any) -> RasaProvider:
    return build(RasaProvider, "orders", host, http=http, **{"timeout_s": 1, **settings})


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    async with FakeRasa(token=TOKEN).running() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[SharedHttp]:
    async with shared_http() as opened:
        yield opened


async def _opened(provider: RasaProvider) -> tuple[MidTierSession, Leg]:
    session = MidTierSession(user_id="user-1", channel="webchat", channel_conversation_id="c1")
    leg = Leg(channel="webchat", channel_conversation_id="c1", provider="orders")
    context = HandoffContext(
        session_id=session.id, user_id="user-1", channel="webchat", reason="r", auth_code="code-1"
    )
    leg.provider_conversation_id = await provider.open(session, leg, context)
    session.legs.append(leg)
    return session, leg


def test_bot_messages_become_activities() -> None:
    handoff = {"midtier": {"handoff": {"provider": "agents", "reason": "why", "paused": True}}}
    messages = [
        {"recipient_id": "u", "text": "Pick one", "buttons": [{"title": "A", "payload": "/a"}]},
        {"recipient_id": "u", "image": "https://x.org/p.gif"},
        {"recipient_id": "u", "custom": {"card": 1}},
        {"recipient_id": "u", "custom": handoff},
        {"recipient_id": "u"},
    ]
    out, request = to_activities(messages)
    buttons, image, custom, event = out
    assert buttons.text == "Pick one\n1: A" and buttons.input_hint == "expectingInput"
    assert buttons.suggested_actions == {
        "actions": [{"type": "imBack", "title": "A", "value": "/a"}]
    }
    assert image.attachments is not None and image.attachments[0].content_type == "image/gif"
    assert custom.attachments is not None and custom.attachments[0].content_type == CUSTOM_TYPE
    assert event.is_event(HandoffEventNames.INITIATE)
    assert event.value == {"provider": "agents", "reason": "why"}
    assert request == handoff["midtier"]["handoff"]
    plain, _ = to_activities(messages[:1], text_fallback=False)
    assert plain[0].text == "Pick one"
    with pytest.raises(ValueError):
        to_activities({"text": "not a list"})


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"recipient_id": 7}, "'recipient_id' must be a string"),
        ({"text": ["hi"]}, "'text' must be a string"),
        ({"image": {"url": "x"}}, "'image' must be a string"),
        ({"buttons": 1}, "'buttons' must be a list of objects"),
        ({"buttons": "Yes"}, "'buttons' must be a list of objects"),
        ({"buttons": [{"title": "Yes"}, "No"]}, "'buttons' must be a list of objects"),
        ({"buttons": [{"title": ["Yes"]}]}, "a button's 'title' must be a string"),
        ({"buttons": [{"payload": {"intent": "x"}}]}, "a button's 'payload' must be a string"),
    ],
)
def test_bot_messages_with_fields_of_the_wrong_type_are_refused_whole(
    message: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        to_activities([{"recipient_id": "u", "text": "fine", **message}])


def test_parse_answers_become_intent_results() -> None:
    found = intent_result(
        {"intent": {"name": "greet", "confidence": 0.9}, "intent_ranking": [{"name": "greet"}]}
    )
    assert (found.name, found.confidence, found.out_of_scope) == ("greet", 0.9, False)
    assert found.ranking == [("greet", 0.0)]
    unknown = intent_result({"intent": {"name": "nlu_fallback", "confidence": 0.3}})
    assert unknown.name is None and unknown.out_of_scope


SECRET = "callback-secret-0123456789"


@pytest.mark.parametrize(
    ("settings", "key", "why"),
    [
        ({}, "url", "Field required"),
        ({"url": "rasa:5005"}, "url", "expected an http(s) URL"),
        ({"url": "http://r", "channel": "socketio"}, "channel", "'rest' or 'callback'"),
        ({"url": "http://r", "channel": "callback"}, "callback_secret", "required with channel"),
        (
            {"url": "http://r", "channel": "callback", "callback_secret": "short"},
            "callback_secret",
            "at least 16 characters",
        ),
        ({"url": "http://r", "parse_timeout_s": "soon"}, "parse_timeout_s", "valid number"),
        ({"url": "http://r", "parse_timeout_s": 0}, "parse_timeout_s", "greater than 0"),
        ({"url": "http://r", "parse_intents": "maybe"}, "parse_intents", "valid boolean"),
        ({"url": "http://r", "tokn": TOKEN}, "tokn", "unknown key"),
    ],
)
def test_bad_settings_fail_with_their_file_and_key(
    settings: dict[str, Any], key: str, why: str
) -> None:
    with pytest.raises(ConfigErrors) as caught:
        _provider(Host(), **settings)
    [error] = caught.value.errors
    assert (error.file, error.key) == ("providers.yaml", f"providers.orders.{key}")
    assert why in error.message


def test_settings_keep_their_defaults_and_read_yaml_flags() -> None:
    plain = _provider(Host(), url="http://rasa:5005/")
    assert (plain.url, plain.channel, plain.parse_intents) == ("http://rasa:5005", "rest", False)
    assert (plain.text_fallback, plain.restart_on_close, plain.parse_timeout_s) == (True, False, 1)
    flags = _provider(
        Host(),
        url="http://r",
        channel="callback",
        callback_secret=SECRET,
        parse_intents="yes",
        text_fallback="off",
        parse_timeout_s=0.5,
    )
    assert (flags.channel, flags.parse_intents, flags.text_fallback) == ("callback", True, False)
    assert flags.parse_timeout_s == 0.5


async def test_auth_code_goes_with_the_first_message_only(rasa: FakeRasa, http: SharedHttp) -> None:
    provider = _provider(Host(), http, url=rasa.base)
    await provider.start()
    try:
        _, leg = await _opened(provider)
        assert await provider.deliver(leg, Activity(type="event", name="midtier.handoff")) == []
        first = await provider.deliver(leg, Activity(text="hi"))
        await provider.deliver(leg, Activity(text="again"))
        assert [a.text for a in first] == ["rasa heard: hi"]
        meta = [r["metadata"]["midtier"] for r in rasa.received]
        assert meta[0]["auth_code"] == "code-1" and "auth_code" not in meta[1]
        assert [r["message"] for r in rasa.received] == ["hi", "again"]
    finally:
        await provider.stop()


async def test_handoff_intent_tells_the_bot_at_once(rasa: FakeRasa, http: SharedHttp) -> None:
    provider = _provider(Host(), http, url=rasa.base, handoff_intent="midtier_handoff")
    await provider.start()
    try:
        _, leg = await _opened(provider)
        await provider.deliver(leg, Activity(type="event", name="midtier.handoff"))
        assert rasa.received[0]["message"] == "/midtier_handoff"
        assert rasa.received[0]["metadata"]["midtier"]["auth_code"] == "code-1"
    finally:
        await provider.stop()


async def test_failed_handoff_resumes_and_close_restarts(rasa: FakeRasa, http: SharedHttp) -> None:
    provider = _provider(Host(), http, url=rasa.base, token=TOKEN, restart_on_close=True)
    await provider.start()
    try:
        _, leg = await _opened(provider)
        leg.data["rasa_paused"] = True
        await provider.deliver(leg, status_event("accepted"))
        assert rasa.events == []
        await provider.deliver(leg, status_event("failed", "nobody"))
        assert rasa.events == [(leg.provider_conversation_id, {"event": "resume"})]
        assert leg.data["rasa_paused"] is False
        await provider.close(leg, "done")
        assert rasa.received[-1]["message"] == "/restart"
    finally:
        await provider.stop()


async def test_http_errors_are_provider_errors_and_a_server_down_is_unhealthy(
    rasa: FakeRasa, http: SharedHttp
) -> None:
    provider = _provider(Host(), http, url=rasa.base)
    assert await provider.health() is False  # not started
    await provider.start()
    try:
        assert await provider.health() is True
        _, leg = await _opened(provider)
        rasa.fail_status = 503
        with pytest.raises(ProviderError, match="HTTP 503") as caught:
            await provider.deliver(leg, Activity(text="hi"))
        assert not isinstance(caught.value, ProviderTimeout)
    finally:
        await provider.stop()
    down = _provider(Host(), http, url="http://127.0.0.1:9")
    await down.start()
    try:
        assert await down.health() is False
    finally:
        await down.stop()


@pytest.mark.parametrize("channel", ["rest", "callback"])
async def test_a_hanging_rasa_is_cut_off_by_the_pool_at_its_deadline(
    rasa: FakeRasa, http: SharedHttp, channel: str
) -> None:
    provider = _provider(
        Host(), http, url=rasa.base, channel=channel, callback_secret=SECRET, timeout_s=0.3
    )
    await provider.start()
    try:
        _, leg = await _opened(provider)
        rasa.hang.set()
        with pytest.raises(ProviderTimeout, match=r"no answer to message within 0\.3s"):
            await pooled(provider).deliver(leg, Activity(text="hi"))
        assert [r["message"] for r in rasa.received] == ["hi"]
        assert provider._inflight == {}  # later callbacks for the sender are not collected
    finally:
        await provider.stop()


async def test_the_provider_alone_sets_no_deadline_of_its_own(rasa: FakeRasa) -> None:
    """Neither ``timeout_s`` nor the shared client's default ends a call: the pool does."""
    async with shared_http(total_s=0.1) as short:
        provider = _provider(Host(), short, url=rasa.base, timeout_s=0.3)
        await provider.start()
        try:
            _, leg = await _opened(provider)
            rasa.hang.set()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2 * provider.config.timeout_s) as outer:
                    await provider.deliver(leg, Activity(text="hi"))
            assert outer.expired()  # ended by this deadline, not by anything the provider raised
        finally:
            await provider.stop()


async def test_model_parse_keeps_its_own_shorter_deadline(rasa: FakeRasa, http: SharedHttp) -> None:
    provider = _provider(Host(), http, url=rasa.base, token=TOKEN, parse_timeout_s=0.2)
    await provider.start()
    try:
        rasa.hang_parse.set()
        async with asyncio.timeout(provider.config.timeout_s):  # parse must end well before
            with pytest.raises(ProviderTimeout, match=r"/model/parse: no answer within 0\.2s"):
                await provider.parse("where is my parcel")
        assert rasa.parsed == ["where is my parcel"]
    finally:
        await provider.stop()


async def test_rasa_nlu_feeds_the_classifier(rasa: FakeRasa, http: SharedHttp) -> None:
    host = Host()
    rasa.intents = {"parcel": ("track_order", 0.93), "yes": ("affirm", 0.99)}
    provider = _provider(host, http, url=rasa.base, token=TOKEN, parse_intents=True)
    await provider.start()
    try:
        classifier = host.classifier
        assert isinstance(classifier, RasaNluClassifier)
        found = await classifier.aclassify("where is my parcel")
        assert (found.name, found.confidence) == ("track_order", 0.93)
        assert classifier.classify("where is my parcel").out_of_scope  # sync: embedded only
        kept = await classifier.aclassify("my balance")  # Rasa: nlu_fallback
        assert kept.name == "check_balance"
        assert (await classifier.aclassify("yes")).out_of_scope  # no route serves affirm
        assert rasa.parsed == ["where is my parcel", "my balance", "yes"]
        rasa.token = "rotated"  # Rasa now refuses our token: its answer is skipped
        assert (await classifier.aclassify("parcel")).out_of_scope
    finally:
        await provider.stop()
    assert host.classifier.sources == []
