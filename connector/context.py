"""What an adapter is built from: one typed context.

Every channel adapter is constructed as ``Kind(context)`` with a :class:`ChannelContext`
that carries its name, its own settings (the adapter's pydantic ``Settings`` model,
``extra="forbid"``, validated from its block of ``midtier.yaml`` at start-up and by
``midtier check``, with the file and key of every problem), the data directory, the public
URL midtier is reached at, the HTTP client shared by all adapters, and the host it calls
back into. An adapter reads no config any other way.

A provider is built the same way, as ``Kind(context)`` with a :class:`ProviderContext`: its
``Settings`` validate the kind's own keys of its ``providers.yaml`` block, and the context
also carries the keys every provider has (``config``: kind, title, timeout_s, credential).

Providers may share one object (the Connector API that every remote Bot Framework bot
calls back, say): a provider asks its context for it with ``context.shared(Factory)``, where
``Factory`` is built from a :class:`ServiceContext`. The app makes one :class:`Services` per
application, so every provider that asks for the same factory gets the same object, and a
second app in the same process gets its own; the app mounts the routes of such an object
once and starts it before the adapters (``mount`` / ``start`` / ``stop``, as adapters have).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from connector.config import ProviderConfig
from connector.config_files import validation_errors
from connector.errors import ConfigErrors

if TYPE_CHECKING:  # the core imports aiohttp only in connector.app
    from aiohttp import ClientSession

    from connector.channel_protocol import ChannelHost
    from connector.provider_protocol import ProviderHost

S = TypeVar("S", bound=BaseModel)
H = TypeVar("H", bound="ProviderHost")
T = TypeVar("T")


class NoSettings(BaseModel):
    """The settings of an adapter that has none: any key is a mistake."""

    model_config = ConfigDict(extra="forbid")


class SharedHttp:
    """The one HTTP client adapters share (connection pool, DNS cache), opened by the app at
    start-up before any adapter starts and closed after they all stopped."""

    def __init__(self) -> None:
        self._session: ClientSession | None = None

    def open(self, session: ClientSession) -> None:
        self._session = session

    def __call__(self) -> ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("the shared HTTP client is used before start-up or after shutdown")
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class AdapterContext(Generic[S]):
    """What every adapter is built from."""

    name: str
    settings: S
    data_dir: Path
    public_url: str  # e.g. https://chat.example.com (no trailing slash)
    http: SharedHttp
    file: str  # where the settings came from, for errors: "midtier.yaml"
    key: str  # ... and under which key: "channels.telegram"

    def url(self, path: str) -> str:
        """The public URL of one of midtier's paths (``/channels/telegram``)."""
        return self.public_url + path


@dataclass(frozen=True)
class ChannelContext(AdapterContext[S]):
    """A channel adapter's context: the core's channel side is its host."""

    host: ChannelHost

    @property
    def webhook_url(self) -> str:
        """Where the platform must post: ``<public url>/channels/<name>``."""
        return self.url(f"/channels/{self.name}")


@dataclass(frozen=True)
class ServiceContext:
    """What an object shared by providers is built from: the app's, not one provider's."""

    host: ProviderHost
    data_dir: Path
    public_url: str  # no trailing slash
    http: SharedHttp
    channels: tuple[str, ...] = ()  # the names of the configured channels


class Services:
    """The objects providers of one app share, one per factory, made when first asked for."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._made: dict[Callable[[ServiceContext], object], tuple[object, str]] = {}

    def get(self, factory: Callable[[ServiceContext], T], asked_by: str = "") -> T:
        """The app's one ``factory(context)``; ``asked_by`` (a config key) names it in errors."""
        made = self._made.get(factory)
        if made is None:
            made = self._made[factory] = (factory(self.context), asked_by)
        return cast(T, made[0])  # stored under its own factory: of the type it returns

    def __iter__(self) -> Iterator[tuple[str, object]]:
        """``(key of the first asker, object)`` for each object made, in the order made."""
        return iter([(key, made) for made, key in self._made.values()])


@dataclass(frozen=True)
class ProviderContext(AdapterContext[S], Generic[S, H]):
    """A provider's context: the keys every provider has, the host it calls back into
    (``ProviderHost``, or a protocol extending it for a provider that uses more of the core),
    and the app's shared objects."""

    config: ProviderConfig  # kind, title, timeout_s, credential
    host: H
    services: Services

    @property
    def title(self) -> str:
        """How the provider is called to the user: its ``title``, else its name."""
        return self.config.title or self.name

    def shared(self, factory: Callable[[ServiceContext], T]) -> T:
        """The one object ``factory`` makes for this app, the same for every provider."""
        return self.services.get(factory, self.key)


def settings_of(cls: type[Any], raw: dict[str, Any], file: str, key: str) -> BaseModel:
    """Validate ``raw`` with the adapter class's ``Settings`` model (or none allowed);
    ``ConfigErrors`` naming ``file`` and ``key.<field>`` for every problem."""
    model: type[BaseModel] = getattr(cls, "Settings", NoSettings)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(file, exc, prefix=key)) from None
