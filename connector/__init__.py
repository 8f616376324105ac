"""midtier's core: sessions, routing, switching, delivery. Knows no platform and no bot framework."""

__version__ = "0.1.0"
