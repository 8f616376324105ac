"""Real implementations of the core's interfaces that record what they get.

They run in-process for unit tests of the core; the integration tests use the real adapters
over HTTP instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from connector.activity import Activity, ActivityTypes, ChannelAccount, HandoffEventNames
from connector.config import (
    Config,
    MidtierConfig,
    ProviderConfig,
    Route,
    RoutingConfig,
)
from connector.engine import Engine
from connector.errors import ChannelUnavailable, ProviderError
from connector.interfaces import IntentResult, SessionStore
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession
from connector.settings import SessionSettings
from connector.store.memory import MemoryStore


class KeywordClassifier:
    """Intent = the first keyword found in the text (confidence 0.9), else out of scope."""

    def __init__(self, keywords: dict[str, str]) -> None:
        self.keywords = keywords

    def classify(self, text: str) -> IntentResult:
        lowered = text.lower()
        for word, intent in self.keywords.items():
            if word in lowered:
                return IntentResult(name=intent, confidence=0.9, ranking=[(intent, 0.9)])
        return IntentResult(name=None, confidence=0.1, out_of_scope=True)


class RecordingProvider:
    """A provider that answers ``"<name>: <text>"`` and records everything it is given."""

    runs_in_process = True  # in the test's process, nothing outside it sees a delivery

    def __init__(self, name: str) -> None:
        self.name = name
        self.opened: list[HandoffContext] = []
        self.delivered: list[tuple[str, Activity]] = []  # (provider conversation id, activity)
        self.closed: list[tuple[str, str]] = []  # (provider conversation id, reason)
        self.fail_open = False
        self.fail_deliver = False
        self.gate: asyncio.Event | None = None  # open() waits for it when set
        self.opening = asyncio.Event()  # set once open() has been called
        self.hang: asyncio.Event | None = None  # deliver() of messages waits for it when set
        self.delivering = asyncio.Event()  # set once deliver() has been given a message
        self.answer: Callable[[Activity], list[Activity]] | None = None
        self.healthy = True
        self._n = 0

    async def open(self, session: MidTierSession, leg: Leg, context: HandoffContext) -> str:
        self.opening.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_open:
            raise ProviderError(self.name, "cannot open")
        self.opened.append(context)
        self._n += 1
        return f"{self.name}-conv-{self._n}"

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        self.delivered.append((leg.provider_conversation_id, activity))
        if activity.type != ActivityTypes.MESSAGE:
            return []
        self.delivering.set()
        if self.fail_deliver:
            raise ProviderError(self.name, "exploded")
        if self.hang is not None:
            await self.hang.wait()
        if self.answer is not None:
            return self.answer(activity)
        return [Activity(type="message", text=f"{self.name}: {activity.text}")]

    async def close(self, leg: Leg, reason: str) -> None:
        self.closed.append((leg.provider_conversation_id, reason))

    async def health(self) -> bool:
        return self.healthy

    def messages(self) -> list[str]:
        return [a.text or "" for _, a in self.delivered if a.type == ActivityTypes.MESSAGE]

    def events(self, name: str) -> list[Activity]:
        return [a for _, a in self.delivered if a.is_event(name)]

    def statuses(self) -> list[str]:
        return [a.value["state"] for a in self.events(HandoffEventNames.STATUS)]


class RecordingChannel:
    """A channel that keeps what it sent; ``down`` makes it refuse like a closed tab."""

    def __init__(self, name: str = "test") -> None:
        self.name = name
        self.sent: list[Activity] = []
        self.signals: list[Activity] = []  # typing and the like, kept apart
        self.down = False

    async def send(self, activity: Activity) -> str:
        if self.down:
            raise ChannelUnavailable("nobody listening")
        (self.signals if activity.type == ActivityTypes.TYPING else self.sent).append(activity)
        return activity.id or ""

    def texts(self) -> list[str]:
        return [a.text or "" for a in self.sent]


def make_config(
    tmp: Path,
    providers: list[str],
    routes: dict[str, Route],
    session: SessionSettings | None = None,
) -> Config:
    return Config(
        dir=tmp,
        midtier=MidtierConfig(
            title="Test support", channels={}, session=session or SessionSettings()
        ),
        providers={
            n: ProviderConfig(kind="test", title=f"the {n} desk", timeout_s=0.5) for n in providers
        },
        routing=RoutingConfig(min_confidence=0.5, fallback="agents", default="faq", routes=routes),
        nlu_files=[],
    )


KEYWORDS = {
    "balance": "check_balance",
    "hello": "greet",
    "dispute": "dispute_charge",
    "fraud": "report_fraud",
}


def make_engine(
    tmp: Path, store: SessionStore | None = None, session: SessionSettings | None = None
) -> tuple[Engine, dict[str, RecordingProvider], RecordingChannel]:
    routes = {
        "faq": Route(intents=["greet", "check_balance"]),
        "disputes": Route(intents=["dispute_charge"]),
        "agents": Route(intents=["report_fraud"], sticky=True),
    }
    config = make_config(tmp, list(routes), routes, session)
    providers = {n: RecordingProvider(n) for n in routes}
    channel = RecordingChannel()
    engine = Engine(
        config,
        store or MemoryStore(),
        KeywordClassifier(KEYWORDS),
        {"test": channel},
        dict(providers),
        token_url="http://127.0.0.1:1/auth/token",
    )
    return engine, providers, channel


def user_message(text: str, *, msg_id: str | None = None, conversation: str = "c1") -> Activity:
    return Activity(
        type="message",
        id=msg_id,
        text=text,
        from_=ChannelAccount(id="user-1", role="user"),
        conversation={"id": conversation},  # type: ignore[arg-type]
    )
