"""One route of ``routing.yaml``: which intents it serves (names and fnmatch patterns,
compiled once). The conditions under which it may take a conversation are
:mod:`connector.routing.conditions`."""

from __future__ import annotations

import re
from fnmatch import translate

from connector.config import Route


class CompiledRoute:
    """A route with its intent patterns compiled."""

    __slots__ = ("exact", "name", "pattern", "route")

    def __init__(self, name: str, route: Route) -> None:
        self.name = name
        self.route = route
        self.exact = {i for i in route.intents if not any(c in i for c in "*?[")}
        globs = [translate(i) for i in route.intents if i not in self.exact]
        self.pattern = re.compile("|".join(globs)) if globs else None

    def serves(self, intent: str) -> bool:
        return intent in self.exact or bool(self.pattern and self.pattern.match(intent))
