"""Rasa bots' own NLU as a source of intents for midtier's router (``parse_intents: true``).

:class:`RasaNluClassifier` wraps the core's classifier. ``classify`` stays the embedded
classifier (synchronous, cheap); ``aclassify`` also asks every Rasa provider configured with
``parse_intents`` (``POST /model/parse``, concurrently, each within its ``parse_timeout_s``)
and keeps the most confident in-scope answer, counting a Rasa answer only when a route serves
its intent (a bot's internal intents such as ``affirm`` must not pull a conversation to the
fallback). A Rasa server that fails or is slow is skipped for that message. The engine
uses ``aclassify`` when the classifier has it (``connector.interfaces.AsyncIntentClassifier``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from connector.errors import ProviderError
from connector.interfaces import IntentClassifier, IntentResult

log = logging.getLogger("midtier.rasa")


class IntentSource(Protocol):
    """A provider that can read intents (``RasaProvider.parse``)."""

    name: str

    async def parse(self, text: str) -> IntentResult: ...


class RasaNluClassifier:
    """The embedded classifier, plus the NLU of Rasa bots when awaited."""

    def __init__(self, base: IntentClassifier, routed: Callable[[str], bool] | None = None) -> None:
        self.base = base
        self.routed = routed or (lambda intent: True)
        self.sources: list[IntentSource] = []

    def classify(self, text: str) -> IntentResult:
        """The embedded classifier's answer (for synchronous callers)."""
        return self.base.classify(text)

    async def aclassify(self, text: str) -> IntentResult:
        """The most confident in-scope answer of the embedded classifier and the Rasa bots."""
        best = self.base.classify(text)
        if not self.sources:
            return best
        answers = await asyncio.gather(
            *(source.parse(text) for source in self.sources), return_exceptions=True
        )
        for source, answer in zip(self.sources, answers, strict=True):
            if isinstance(answer, ProviderError | TimeoutError):
                log.warning("intent from %s skipped: %s", source.name, answer or "timed out")
                continue
            if isinstance(answer, BaseException):
                raise answer
            if answer.out_of_scope or answer.name is None or not self.routed(answer.name):
                continue
            if best.out_of_scope or answer.confidence > best.confidence:
                best = answer
        return best


def install_classifier(host: Any, source: IntentSource) -> RasaNluClassifier:
    """Wrap ``host.classifier`` (once) and add ``source`` to the wrapper."""
    current = getattr(host, "classifier", None)
    if not isinstance(current, RasaNluClassifier):
        if current is None:
            raise ProviderError(source.name, "parse_intents needs a host with a classifier")
        router = getattr(host, "router", None)
        routed = (lambda intent: bool(router.providers_for(intent))) if router else None
        current = RasaNluClassifier(current, routed)
        host.classifier = current
    if source not in current.sources:
        current.sources.append(source)
    return current


def remove_classifier(host: Any, source: IntentSource) -> None:
    """Take ``source`` out again; the wrapper stays (it answers like the embedded one)."""
    current = getattr(host, "classifier", None)
    if isinstance(current, RasaNluClassifier) and source in current.sources:
        current.sources.remove(source)


__all__ = ["IntentSource", "RasaNluClassifier", "install_classifier", "remove_classifier"]
