"""Channel adapters: one module per messaging app.

``REGISTRY`` maps the ``kind`` used in ``midtier.yaml`` to the adapter class, as a
``"module:Class"`` path imported only when a config uses it.
"""

REGISTRY: dict[str, str] = {
    "webchat": "adapters.channels.webchat:WebChatChannel",
    "directline": "adapters.channels.directline:DirectLineChannel",
}
