"""What goes to the user: provider replies and midtier's own notices, stamped and recorded.

Every activity for the user is addressed to the session's channel conversation, shows who
speaks (a bot or agent by its provider title, or midtier itself), is written to the
transcript when it is a message, and leaves through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    new_activity_id,
    now,
)
from connector.interfaces import SessionStore
from connector.outbox import Outbox
from connector.sessions import Leg, MidTierSession, Speaker, TranscriptEntry


class ToUser:
    """Sends to the user of a session, as a provider or as midtier."""

    def __init__(
        self,
        store: SessionStore,
        outbox: Outbox,
        *,
        system_name: str,
        title: Callable[[str], str],
        speaker: Callable[[str], Speaker],
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._title = title
        self._speaker = speaker
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

    async def notify(self, session: MidTierSession, text: str) -> None:
        """Tell the user something in midtier's own voice."""
        await self.send(session, None, Activity(type=ActivityTypes.MESSAGE, text=text))

    async def send(self, session: MidTierSession, leg: Leg | None, activity: Activity) -> None:
        """Pass what ``leg``'s provider sent (or, without a leg, midtier's own words)."""
        provider = leg.provider if leg else None
        out = activity.model_copy()
        out.id = new_activity_id()
        out.timestamp = out.timestamp or now()
        out.channel_id = session.channel
        out.conversation = ConversationAccount(id=session.channel_conversation_id)
        out.recipient = ChannelAccount(id=session.user_id, role="user")
        if provider is None:
            out.from_ = self._system
        elif out.from_ is None or out.from_.id == provider or not out.from_.name:
            out.from_ = self._account(provider)
        speaker: Speaker = "system" if provider is None else self._speaker(provider)
        out.channel_data = {**(out.channel_data or {}), "midtier": {"speaker": speaker}}
        if out.type == ActivityTypes.MESSAGE:
            await self._store.append_transcript(
                session.id,
                TranscriptEntry(
                    speaker=speaker,
                    text=out.text,
                    provider=provider,
                    leg_id=leg.id if leg else None,
                    activity=out.to_wire(),
                ),
            )
        await self._outbox.send(session.id, session.channel, session.channel_conversation_id, out)
