"""How tests and benchmarks start Debian's Chromium headless on this closed network."""

from __future__ import annotations

import shutil

# Without the background-networking flags Chromium keeps trying hosts it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def executable() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"
