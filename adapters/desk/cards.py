"""The queue as agents see it: one card per conversation on the desk, built from the legs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.interfaces import ProviderStore

TRANSCRIPT = 50  # entries on a card


async def queue_cards(
    store: ProviderStore, provider: str, tickets: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every open conversation of ``tickets`` (provider conversation -> session id), waiting
    ones first, oldest first: status, agent, why it came, the user, the customer's last
    message and the transcript."""
    out = []
    for conversation, session_id in list(tickets.items()):
        session = await store.get(session_id)
        leg = session.leg_for_provider(provider, conversation) if session else None
        if session is None or leg is None or not leg.is_open:
            continue
        desk = leg.data.get("desk", {})
        transcript = [
            {"speaker": e.speaker, "text": e.text, "at": e.at.isoformat(), "provider": e.provider}
            for e in await store.transcript(session.id, last=TRANSCRIPT)
            if e.speaker != "system" or e.activity
        ]
        said = [e for e in transcript if e["speaker"] == "user"]
        out.append(
            {
                "conversation": conversation,
                "status": desk.get("status", "waiting"),
                "agent": desk.get("agent"),
                "reason": desk.get("reason") or leg.open_reason,
                "intent": desk.get("intent"),
                "confidence": desk.get("confidence"),
                "from_provider": desk.get("from_provider"),
                "opened_at": leg.opened_at.isoformat(),
                "user": {"id": session.user_id, "claims": desk.get("claims", {})},
                "last_message": {"text": said[-1]["text"], "at": said[-1]["at"]} if said else None,
                "transcript": transcript,
            }
        )
    out.sort(key=lambda c: (c["status"] != "waiting", c["opened_at"]))
    return out
