"""midtier's core: sessions, routing, switching, delivery.

It knows no messaging platform and no bot framework; adapters plug those in.
"""

__version__ = "0.1.0"
