"""The Telegram channel: Bot API webhooks in, Bot API calls out.

Telegram posts one ``Update`` per webhook call to ``/channels/<name>`` with the
``X-Telegram-Bot-Api-Secret-Token`` header set to the ``secret_token`` given to
``setWebhook``: a static secret, not a signature over the body, so a verified body is still
read field by field with strict types (:mod:`adapters.channels.telegram_updates`).

* ``message``: text (or a caption), media as attachments carrying Telegram's ``file_id``
  (a download URL would hold the bot token), a location as a ``GeoCoordinates`` entity, a
  shared contact as a ``Person`` entity. Messages from bots are dropped.
* ``callback_query``: an inline keyboard button; its value becomes the text, and the
  webhook answer is ``answerCallbackQuery`` (Telegram runs a method returned as the
  webhook's response body), so that the button's spinner stops without another call.
* Anything else (``edited_message``, ``channel_post``, ``my_chat_member``...) is ignored,
  logged once per kind.

The dedupe key is ``update_id``; the conversation is ``chat.id``. Replies go out with
``sendMessage`` (choices as an inline keyboard), ``sendPhoto`` and ``sendChatAction``. The
bot token is part of every Bot API URL, so no URL is ever logged or put in an error. The
Bot API's bodies and error answers are :mod:`adapters.channels.telegram_api`.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.channels import platform_api, render
from adapters.channels import telegram_api as api
from adapters.channels import telegram_updates as tg
from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    now,
)
from connector.channels import OK, ChannelRequest, ChannelResponse, IgnoredKinds
from connector.context import ChannelContext
from connector.errors import AuthError, ChannelError, Forbidden
from connector.logs import redactor

log = logging.getLogger("midtier.telegram")

HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")  # what parse reads; setWebhook asks for these


class TelegramSettings(BaseModel):
    """``channels.<name>`` of ``kind: telegram`` in midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    bot_token: str = Field(
        pattern=r"^\d{1,20}:[A-Za-z0-9_-]{1,128}$", description="from @BotFather; ${ENV}"
    )
    secret_token: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,256}$", description="set with setWebhook; ${ENV}"
    )
    api_base: str = Field(default="https://api.telegram.org", pattern=r"^https?://[^/?#]+")
    set_webhook: bool = Field(
        default=False, description="call setWebhook at start-up with midtier's webhook URL"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=60)


class TelegramChannel:
    """A Telegram bot: verifies and parses its webhook, sends with the Bot API."""

    Settings = TelegramSettings

    def __init__(self, context: ChannelContext[TelegramSettings]) -> None:
        self.name = context.name
        settings = context.settings
        self._settings = settings
        self._http = context.http
        self._webhook_url = context.webhook_url
        self._secret = settings.secret_token.encode()
        # The token stays in this prefix only: never logged, never in an error text.
        self._base = f"{settings.api_base.rstrip('/')}/bot{settings.bot_token}/"
        # The bot's own user id is the token's public part.
        self._bot = ChannelAccount(id=settings.bot_token.split(":", 1)[0], role="bot")
        self._ignored = IgnoredKinds(self.name)

    async def start(self) -> None:
        """Keep the secrets out of every log line; register the webhook if asked to."""
        redactor.add(self._settings.bot_token)
        redactor.add(self._settings.secret_token)
        if not self._settings.set_webhook:
            return
        body = {
            "url": self._webhook_url,
            "secret_token": self._settings.secret_token,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        try:
            await self._call("setWebhook", body)
        except ChannelError as exc:  # the text holds no URL, hence no token
            log.warning(
                "channel %s: setWebhook failed: %s",
                self.name,
                exc,
                extra={"event": "set_webhook_failed", "channel": self.name},
            )
        else:
            log.info("channel %s: webhook set to %s", self.name, self._webhook_url)

    # ------------------------------------------------------------------ inbound

    async def verify(self, request: ChannelRequest) -> None:
        """The secret header must equal ``secret_token`` (compared as bytes, in constant time)."""
        given = request.header(HEADER)
        if not given:
            raise AuthError(f"missing {HEADER}")
        # surrogatepass: a header that arrived as non-UTF-8 bytes is wrong, not an error.
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self._secret):
            raise Forbidden(f"wrong {HEADER}")

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """The update as at most one activity (Telegram sends one update per call)."""
        update = request.json_object()
        update_id = tg.update_id(update)
        if "message" in update:
            message = tg.read(tg.Message, update["message"], "message")
            activity = self._message(update_id, message)
        elif "callback_query" in update:
            query = tg.read(tg.CallbackQuery, update["callback_query"], "callback_query")
            activity = self._button(update_id, query)
        else:
            kinds = [k for k in update if k != "update_id"]
            self._ignored(kinds[0] if kinds else "empty update")
            return []
        return [activity] if activity is not None else []

    def _activity(
        self, update_id: int, user: tg.User, chat: tg.Chat, date: int | None, **fields: Any
    ) -> Activity:
        # Every field in one construction: each assignment afterwards is validated again.
        return Activity(
            type=ActivityTypes.MESSAGE,
            id=str(update_id),
            timestamp=datetime.fromtimestamp(date, UTC) if date else now(),
            channel_id=self.name,
            from_=ChannelAccount(id=str(user.id), name=user.full_name, role="user"),
            recipient=self._bot,
            conversation=ConversationAccount(id=str(chat.id), is_group=chat.type != "private"),
            **fields,
        )

    def _message(self, update_id: int, message: tg.Message) -> Activity | None:
        user = message.from_
        if user is None or user.is_bot:
            self._ignored("message from a bot" if user else "message without a sender")
            return None
        text = message.text if message.text is not None else message.caption
        attachments = tg.attachments(message)
        entities = tg.entities(message)
        if text is None and not attachments and not entities:
            self._ignored("message without text or media")  # polls, dice, service messages
            return None
        media = {"attachments": attachments or None, "entities": entities or None}
        return self._activity(update_id, user, message.chat, message.date, text=text, **media)

    def _button(self, update_id: int, query: tg.CallbackQuery) -> Activity | None:
        if query.from_.is_bot or query.message is None or query.data is None:
            # Buttons midtier sends are on chat messages and carry data; inline-mode and
            # game buttons are not midtier's.
            self._ignored("callback_query without a chat message or data")
            return None
        own = {"telegram": {"callback_query_id": query.id}}
        # Its text is the value the bot offered.
        chat = query.message.chat
        return self._activity(
            update_id, query.from_, chat, None, text=query.data, value=query.data, channel_data=own
        )

    async def acknowledge(
        self, request: ChannelRequest, activities: list[Activity]
    ) -> ChannelResponse:
        """Answer a pressed button's callback query in the webhook response itself."""
        for activity in activities:
            own = (activity.channel_data or {}).get("telegram")
            if isinstance(own, dict) and isinstance(own.get("callback_query_id"), str):
                return ChannelResponse.of_json(
                    {"method": "answerCallbackQuery", "callback_query_id": own["callback_query_id"]}
                )
        return OK

    # ------------------------------------------------------------------ outbound

    async def send(self, activity: Activity) -> str:
        """Images with ``sendPhoto``, then the text and its choices with ``sendMessage``;
        ``typing`` with ``sendChatAction``. Returns the last message id sent."""
        chat = api.chat_id(activity.conversation.id if activity.conversation else "")
        if activity.type == ActivityTypes.TYPING:
            await self._call("sendChatAction", {"chat_id": chat, "action": "typing"})
            return ""
        if activity.type != ActivityTypes.MESSAGE:
            return ""  # events, edits and the like have no Telegram form here
        sent = ""
        for image in render.images(activity):
            photo = {"chat_id": chat, "photo": image.url}
            sent = api.message_id(await self._call("sendPhoto", photo))
        body = api.text_message(chat, render.text_of(activity), render.choices(activity))
        if body is not None:
            sent = api.message_id(await self._call("sendMessage", body))
        return sent

    async def send_wire(self, activity: dict[str, Any]) -> str:
        """``send`` of the outbox's wire form: a message of text alone (most replies) is not
        validated into an ``Activity`` first, as nothing else of it is read."""
        text, conversation = activity.get("text"), activity.get("conversation")
        if (
            activity.get("type", ActivityTypes.MESSAGE) != ActivityTypes.MESSAGE
            or not isinstance(text, str)
            or not isinstance(conversation, dict)
            or "attachments" in activity  # images and cards: read as ``send`` reads them
            or "suggestedActions" in activity
        ):
            return await self.send(Activity.from_wire(activity))
        body = api.text_message(api.chat_id(conversation.get("id")), text, [])
        return api.message_id(await self._call("sendMessage", body)) if body is not None else ""

    async def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        what = f"telegram {method}"
        answer = await platform_api.call(
            self._http(),
            "POST",
            self._base + method,
            what=what,
            json_body=body,
            timeout_s=self._settings.timeout_s,
            classify=api.classify,
        )
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise ChannelError(f"{what}: not ok: {platform_api.describe(answer)}")
        return answer
