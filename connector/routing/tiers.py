"""The intent classifier tiers by name, and what each needs installed: light, so that
config validation and the command line need not import numpy to know them."""

from __future__ import annotations

TIERS: dict[str, str] = {
    "default": "connector.routing.nlu_default",
    "accurate": "connector.routing.nlu_accurate",
}
"""Tier name -> module path."""
EXTRAS: dict[str, str] = {"accurate": "embeddings"}
"""Tier name -> the optional dependency group (``midtier[...]``) its module needs."""
