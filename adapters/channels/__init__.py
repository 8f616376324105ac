"""Channel adapters: one module per messaging app.

``REGISTRY`` maps the ``kind`` used in ``midtier.yaml`` to the adapter class, as a
``"module:Class"`` path imported only when a config uses it.
"""

REGISTRY: dict[str, str] = {
    "twilio": "adapters.channels.twilio:TwilioChannel",
    "webchat": "adapters.channels.webchat:WebChatChannel",
    "telegram": "adapters.channels.telegram:TelegramChannel",
    "slack": "adapters.channels.slack:SlackChannel",
    "messenger": "adapters.channels.messenger:MessengerChannel",
    "whatsapp": "adapters.channels.whatsapp:WhatsAppChannel",
    "botframework": "adapters.channels.botframework:BotFrameworkChannel",
}
