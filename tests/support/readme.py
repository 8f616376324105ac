"""What README.md tells a new user to try, read from the README itself so tests follow it."""

from __future__ import annotations

import re

from support.server import REPO

_TRY = re.compile(r'Try ("[^"]+"(?:, then "[^"]+")*)')


def quickstart_conversation() -> list[str]:
    """The messages of the Quickstart's 'Try "...", then "...", then "..."', in order."""
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    quickstart = text[text.index("## Quickstart") :]
    match = _TRY.search(quickstart)
    if match is None:
        raise AssertionError('README.md\'s Quickstart no longer says Try "...", then "..."')
    return re.findall(r'"([^"]+)"', match.group(1))
