"""Concrete adapters of midtier: messaging-app channels and answering providers.

``adapters.channels`` and ``adapters.providers`` each expose a ``REGISTRY`` that maps a config
``kind`` to a ``"module:Class"`` path; the core resolves those lazily at start-up.
"""
