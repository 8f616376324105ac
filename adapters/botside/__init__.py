"""Helpers that run in your bot's or service's process, not in midtier's server.

Everything else under ``adapters/`` is loaded by midtier itself. These modules are imported
by the code on the other side of a provider connection, so none of them imports
``connector`` or midtier's server adapters, and this package imports nothing on its own:
each module needs only what is listed here.

``adapters.botside.handoff``
    ``create_handoff_initiation`` / ``create_handoff_status``: the Bot Framework
    ``handoff.initiate`` and ``handoff.status`` events for botbuilder-python bots, which have
    no ``EventFactory``. Needs botbuilder-schema (a dependency of midtier; a botbuilder bot
    has it anyway).
``adapters.botside.rasa``
    ``ActionHandoff``: a rasa-sdk custom action (``action_handoff``) with which a Rasa bot
    asks midtier to hand its conversation over. Runs in the Rasa action server; needs
    rasa-sdk (``pip install midtier[rasa]``, or copy the file next to your actions).
``adapters.botside.signing``
    ``sign`` / ``verify``: the HMAC signature of webhook-provider requests, in both
    directions. Standard library only: copy the file into your service. midtier's own
    webhook provider imports it too, so both sides share one recipe.
"""
