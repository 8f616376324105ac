"""What providers share: one object per factory and app, handed out through their contexts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from connector.config import ProviderConfig
from connector.context import NoSettings, ProviderContext, ServiceContext, Services, SharedHttp
from connector.registry import provider_context


class Directory:
    """A shared object as a provider kind declares one: built from the app's context."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.members: list[str] = []


class Ledger(Directory):
    """Another factory: another object, even of a related type."""


class Member:
    """A provider that joins the app's one directory."""

    def __init__(self, context: ProviderContext[NoSettings, Any]) -> None:
        self.directory = context.shared(Directory)
        self.directory.members.append(context.name)


HOST: Any = SimpleNamespace()  # the providers here never call back into the core


def _services() -> Services:
    context = ServiceContext(
        HOST, Path("data"), "http://127.0.0.1:3978", SharedHttp(), ("webchat",)
    )
    return Services(context)


def _member(name: str, services: Services | None) -> Member:
    config = ProviderConfig.model_validate({"kind": "tests:Member"})
    context = provider_context(
        Member,
        name,
        config,
        HOST,
        data_dir=Path("data"),
        public_url="http://127.0.0.1:3978/",
        http=SharedHttp(),
        services=services,
    )
    return Member(context)


def test_providers_of_one_app_share_one_object_made_from_the_apps_context() -> None:
    services = _services()
    first, second = _member("billing", services), _member("orders", services)
    assert first.directory is second.directory
    assert first.directory.members == ["billing", "orders"]
    assert first.directory.context is services.context
    # What was made, named by the provider that asked first (for the app's errors).
    assert list(services) == [("providers.billing", first.directory)]


def test_each_factory_makes_its_own_object() -> None:
    services = _services()
    directory, ledger = services.get(Directory), services.get(Ledger)
    assert type(directory) is Directory and type(ledger) is Ledger
    assert services.get(Directory) is directory
    assert [made for _, made in services] == [directory, ledger]


def test_another_app_gets_objects_of_its_own() -> None:
    ours, theirs = _member("billing", _services()), _member("billing", _services())
    assert ours.directory is not theirs.directory
    assert theirs.directory.members == ["billing"]


def test_a_provider_built_alone_shares_with_nobody() -> None:
    alone = _member("billing", None)
    assert alone.directory.members == ["billing"]
    assert alone.directory.context.public_url == "http://127.0.0.1:3978"
    assert alone.directory is not _member("billing", None).directory
