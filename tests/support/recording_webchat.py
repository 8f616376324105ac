"""The real web chat channel, keeping every activity the core asked it to send.

Configured by dotted path like any third-party channel
(``channels: {webchat: {kind: "support.recording_webchat:RecordingWebChat"}}``), so a test can
see what reached the channel, including activity types the page shows no trace of.
"""

from __future__ import annotations

from typing import Any

from adapters.channels.webchat import WebChatChannel
from connector.activity import Activity


class RecordingWebChat(WebChatChannel):
    """``WebChatChannel`` that records each activity before sending it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[Activity] = []

    async def send(self, activity: Activity) -> str:
        self.sent.append(activity.model_copy(deep=True))
        return await super().send(activity)
