"""The real web chat channel, keeping every activity the core asked it to send.

Configured by dotted path like any third-party channel
(``channels: {webchat: {kind: "support.recording_webchat:RecordingWebChat"}}``), so a test can
see what reached the channel, including activity types the page shows no trace of.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from adapters.channels.webchat import WebChatChannel
from connector.activity import Activity


class RecordingWebChat(WebChatChannel):
    """``WebChatChannel`` that records each activity before sending it.

    The outbox hands the web chat wire activities (``send_wire``), and ``send`` passes its
    activity on to ``send_wire``: recording there sees both."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[Activity] = []

    async def send_wire(self, activity: dict[str, Any]) -> str:
        self.sent.append(Activity.from_wire(deepcopy(activity)))
        return await super().send_wire(activity)
