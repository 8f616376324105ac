"""What goes to the user: provider replies and midtier's own notices, stamped and recorded.

Every activity for the user is addressed to the session's channel conversation, shows who
speaks (a bot or agent by its provider title, or midtier itself), is written to the
transcript when it is a message, and leaves through the outbox once the unit of work that
produced it is committed. Passing signals (``typing``) are not recorded; they go out at once,
in order with the conversation's replies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    new_activity_id,
    now,
)
from connector.choices import OFFER, offered
from connector.outbox import Outbox
from connector.records import OutboxEntry
from connector.sessions import Leg, MidTierSession, Speaker, TranscriptEntry
from connector.work import Turn

# The session's ``channel_state`` key of what a reply needs besides the conversation id.
ADDRESS = "address"
# A time as ``Activity.to_wire`` writes it.
_WIRE_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _wire_of(account: ChannelAccount) -> dict[str, Any]:
    return account.model_dump(mode="json", by_alias=True, exclude_none=True)


class ToUser:
    """Sends to the user of a session, as a provider or as midtier."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        system_name: str,
        title: Callable[[str], str],
        speaker: Callable[[str], Speaker],
        midtier_voice: Callable[[str], bool] = lambda _provider: False,
    ) -> None:
        self._outbox = outbox
        self._title = title
        self._speaker = speaker
        self._midtier_voice = midtier_voice
        self._system_wire = _wire_of(ChannelAccount(id="midtier", name=system_name, role="bot"))
        self._accounts: dict[str, ChannelAccount] = {}
        self._account_wires: dict[str, dict[str, Any]] = {}

    def _account(self, provider: str) -> ChannelAccount:
        """How a provider appears to the user (built once per provider)."""
        account = self._accounts.get(provider)
        if account is None:
            account = self._accounts[provider] = ChannelAccount(
                id=provider, name=self._title(provider), role="bot"
            )
        return account

    def notify(self, turn: Turn, text: str, *, recorded: str | None = None) -> None:
        """Tell the user something in midtier's own voice. ``recorded``: what the transcript
        keeps instead of ``text`` (for a one-time secret the user alone may see)."""
        activity = Activity(type=ActivityTypes.MESSAGE, text=text)
        self.send(turn, None, activity, recorded=recorded)

    def _sender(self, provider: str | None, sender: ChannelAccount | None) -> dict[str, Any]:
        """Who the user sees speaking, in wire form."""
        if provider is None:
            return dict(self._system_wire)
        if sender is None or not sender.name or not sender.id.startswith(f"{provider}:"):
            # e.g. one agent of the desk: a provider speaks under the title midtier gives it;
            # it cannot pose as someone else (the user, another provider).
            found = self._account_wires.get(provider)
            if found is None:
                found = self._account_wires[provider] = _wire_of(self._account(provider))
            return dict(found)
        return {"id": sender.id, "name": sender.name, "role": "bot"}

    def _stamp(
        self, session: MidTierSession, leg: Leg | None, activity: Activity, at: datetime
    ) -> tuple[str, dict[str, Any], Speaker]:
        """The activity addressed to the session's user, in wire form: its own wire form
        with midtier's keys set (no copy of the activity to dump again); ``at``: its time,
        unless it has one."""
        provider = leg.provider if leg else None
        meta = (activity.channel_data or {}).get("midtier")
        notice = isinstance(meta, dict) and meta.get("notice")
        if provider is not None and notice and self._midtier_voice(provider):
            provider = None  # one of midtier's own parts, telling the user where things are
        wire = activity.to_wire()
        out_id = wire["id"] = new_activity_id()
        if "timestamp" not in wire:
            wire["timestamp"] = _WIRE_TIME.dump_python(at, mode="json")
        wire["channelId"] = session.channel
        wire["conversation"] = {"id": session.channel_conversation_id}
        wire["recipient"] = {"id": session.user_id, "role": "user"}
        wire["from"] = self._sender(provider, activity.from_)
        speaker: Speaker = "system" if provider is None else self._speaker(provider)
        stamp: dict[str, Any] = {"speaker": speaker}
        address = session.channel_state.get(ADDRESS)
        if address:
            stamp["address"] = address
        wire["channelData"] = {**wire.get("channelData", {}), "midtier": stamp}
        return out_id, wire, speaker

    def send(
        self, turn: Turn, leg: Leg | None, activity: Activity, *, recorded: str | None = None
    ) -> None:
        """Pass what ``leg``'s provider sent (or, without a leg, midtier's own words)."""
        session, stamped = turn.session, now()
        out_id, wire, speaker = self._stamp(session, leg, activity, stamped)
        if activity.type == ActivityTypes.MESSAGE:
            kept = wire if recorded is None else {**wire, "text": recorded}
            values = [value for _, value in offered(activity)]  # stamping leaves them
            if values:
                session.channel_state[OFFER] = values  # a reply "2" means the second
            else:
                session.channel_state.pop(OFFER, None)
            turn.record(
                TranscriptEntry(
                    seq=0,
                    at=stamped,
                    speaker=speaker,
                    text=activity.text if recorded is None else recorded,
                    provider=leg.provider if leg else None,
                    leg_id=leg.id if leg else None,
                    activity=kept,
                    ref=None,
                )
            )
        turn.send(
            OutboxEntry(
                id=out_id,
                session_id=session.id,
                channel=session.channel,
                conversation_id=session.channel_conversation_id,
                activity=wire,
                created_at=stamped,
                attempts=0,
                next_attempt_at=stamped,
                last_error=None,
            )
        )

    async def signal(self, session: MidTierSession, leg: Leg | None, activity: Activity) -> None:
        """Show the user a passing signal now (``typing``); dropped if nobody listens."""
        _, wire, _ = self._stamp(session, leg, activity, now())
        await self._outbox.send_now(session.channel, Activity.from_wire(wire))
