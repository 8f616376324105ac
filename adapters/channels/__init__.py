"""Channel adapters: one module per messaging app.

``REGISTRY`` maps the ``kind`` used in ``midtier.yaml`` to the adapter class, as a
``"module:Class"`` path imported only when a config uses it.
"""

REGISTRY: dict[str, str] = {
    "botframework": "adapters.channels.botframework:BotFrameworkChannel",
    "directline": "adapters.channels.directline:DirectLineChannel",
    "messenger": "adapters.channels.messenger:MessengerChannel",
    "slack": "adapters.channels.slack:SlackChannel",
    "telegram": "adapters.channels.telegram:TelegramChannel",
    "twilio": "adapters.channels.twilio:TwilioChannel",
    "webchat": "adapters.channels.webchat:WebChatChannel",
    "whatsapp": "adapters.channels.whatsapp:WhatsAppChannel",
}
