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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from connector.config import ProviderConfig, validation_errors
from connector.errors import ConfigErrors

if TYPE_CHECKING:  # the core imports aiohttp only in connector.app
    from aiohttp import ClientSession

    from connector.interfaces import ChannelHost, ProviderHost

S = TypeVar("S", bound=BaseModel)
H = TypeVar("H", bound="ProviderHost")


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
class ProviderContext(AdapterContext[S], Generic[S, H]):
    """A provider's context: the keys every provider has, and the host it calls back into
    (``ProviderHost``, or a protocol extending it for a provider that uses more of the core)."""

    config: ProviderConfig  # kind, title, timeout_s, credential
    host: H

    @property
    def title(self) -> str:
        """How the provider is called to the user: its ``title``, else its name."""
        return self.config.title or self.name


def settings_of(cls: type[Any], raw: dict[str, Any], file: str, key: str) -> BaseModel:
    """Validate ``raw`` with the adapter class's ``Settings`` model (or none allowed);
    ``ConfigErrors`` naming ``file`` and ``key.<field>`` for every problem."""
    model: type[BaseModel] = getattr(cls, "Settings", NoSettings)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(file, exc, prefix=key)) from None
