"""Provider kinds: who answers a conversation.

``REGISTRY`` maps the ``kind`` of an entry in ``providers.yaml`` to the ``"module:Class"`` path
of its adapter. The values are strings so that importing this package imports no provider (and
none of its libraries); the core resolves the path of each kind it is configured with.
"""

from __future__ import annotations

REGISTRY: dict[str, str] = {
    "botbuilder": "adapters.providers.botbuilder_inproc:BotbuilderProvider",
    "agent_desk": "adapters.providers.agent_desk:AgentDeskProvider",
    "botframework": "adapters.providers.botframework:BotFrameworkProvider",
    "rasa": "adapters.providers.rasa:RasaProvider",
    "webhook": "adapters.providers.webhook:WebhookProvider",
}

__all__ = ["REGISTRY"]
