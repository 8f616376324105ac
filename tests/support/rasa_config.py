"""Config directories for tests with Rasa providers: bot_configs/ plus a Rasa bot or two."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from support.server import DEFAULT_CONFIG

KIND = "adapters.providers.rasa:RasaProvider"
ORDERS_CREDENTIAL = "orders-credential-0123456789"
CALLBACK_SECRET = "callback-secret-0123456789abcdef"
TRACK_ORDER = """version: "3.1"
nlu:
- intent: track_order
  examples: |
    - where is my order
    - track my order please
    - has my order shipped yet
    - when will my package arrive
    - my parcel hasn't arrived
    - what's the status of my order
    - where's my delivery
    - can you track order 1234
    - I want to know where my package is
    - has the parcel been dispatched
    - tracking number for my order
    - what is the status of my shipment
"""


def rasa_config(tmp: Path, rasa_url: str, **settings: Any) -> Path:
    """bot_configs/ copied to ``tmp/config`` with a Rasa bot ``orders`` serving track_order."""
    config = tmp / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    (config / "nlu" / "orders.yml").write_text(TRACK_ORDER, encoding="utf-8")
    providers = yaml.safe_load((config / "providers.yaml").read_text(encoding="utf-8"))
    providers["providers"]["orders"] = {
        "kind": KIND,
        "title": "the orders assistant",
        "url": rasa_url,
        "timeout_s": 2,
        "credential": ORDERS_CREDENTIAL,
        **settings,
    }
    (config / "providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
    routing = yaml.safe_load((config / "routing.yaml").read_text(encoding="utf-8"))
    routing["routes"]["orders"] = {"intents": ["track_order"]}
    (config / "routing.yaml").write_text(yaml.safe_dump(routing), encoding="utf-8")
    return config
