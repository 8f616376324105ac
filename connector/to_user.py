"""What goes to the user: provider replies and midtier's own notices, stamped and recorded.

Every activity for the user is addressed to the session's channel conversation, shows who
speaks (a bot or agent by its provider title, or midtier itself), is written to the
transcript when it is a message, and leaves through the outbox once the unit of work that
produced it is committed. Passing signals (``typing``) are not recorded; they go out at once,
in order with the conversation's replies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
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
        self._system = ChannelAccount(id="midtier", name=system_name, role="bot")
        self._accounts: dict[str, ChannelAccount] = {}

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

    def _stamp(
        self, session: MidTierSession, leg: Leg | None, activity: Activity
    ) -> tuple[str, Activity, Speaker]:
        provider = leg.provider if leg else None
        meta = (activity.channel_data or {}).get("midtier")
        notice = isinstance(meta, dict) and meta.get("notice")
        if provider is not None and notice and self._midtier_voice(provider):
            provider = None  # one of midtier's own parts, telling the user where things are
        out = activity.model_copy()
        out_id = out.id = new_activity_id()
        out.timestamp = out.timestamp or now()
        out.channel_id = session.channel
        out.conversation = ConversationAccount(id=session.channel_conversation_id)
        out.recipient = ChannelAccount(id=session.user_id, role="user")
        if provider is None:
            out.from_ = self._system
        elif (
            out.from_ is None
            or not out.from_.name
            or not out.from_.id.startswith(f"{provider}:")  # e.g. one agent of the desk
        ):
            # A provider speaks under the title midtier gives it; it cannot pose as someone
            # else (the user, another provider).
            out.from_ = self._account(provider)
        else:
            out.from_ = ChannelAccount(id=out.from_.id, name=out.from_.name, role="bot")
        speaker: Speaker = "system" if provider is None else self._speaker(provider)
        stamp: dict[str, Any] = {"speaker": speaker}
        address = session.channel_state.get(ADDRESS)
        if address:
            stamp["address"] = address
        out.channel_data = {**(out.channel_data or {}), "midtier": stamp}
        return out_id, out, speaker

    def send(
        self, turn: Turn, leg: Leg | None, activity: Activity, *, recorded: str | None = None
    ) -> None:
        """Pass what ``leg``'s provider sent (or, without a leg, midtier's own words)."""
        session = turn.session
        out_id, out, speaker = self._stamp(session, leg, activity)
        wire = out.to_wire()
        if out.type == ActivityTypes.MESSAGE:
            kept = wire if recorded is None else {**wire, "text": recorded}
            values = [value for _, value in offered(out)]
            if values:
                session.channel_state[OFFER] = values  # a reply "2" means the second
            else:
                session.channel_state.pop(OFFER, None)
            turn.record(
                TranscriptEntry(
                    speaker=speaker,
                    text=out.text if recorded is None else recorded,
                    provider=leg.provider if leg else None,
                    leg_id=leg.id if leg else None,
                    activity=kept,
                )
            )
        turn.send(
            OutboxEntry(
                id=out_id,
                session_id=session.id,
                channel=session.channel,
                conversation_id=session.channel_conversation_id,
                activity=wire,
            )
        )

    async def signal(self, session: MidTierSession, leg: Leg | None, activity: Activity) -> None:
        """Show the user a passing signal now (``typing``); dropped if nobody listens."""
        _, out, _ = self._stamp(session, leg, activity)
        await self._outbox.send_now(session.channel, out)
