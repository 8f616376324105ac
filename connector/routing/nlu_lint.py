"""Warnings about NLU data and routes that load but are probably not what their author
meant (``midtier check``), each with its file and line: an example given twice in one
intent, an intent with a single example, an intent that two routes serve, an intent that no
route serves (it can only ever reach the fallback), and, with confidence judged per provider,
a provider that is the first to serve every intent.

Errors (unreadable files, an example in two intents) are ``nlu_data``'s; this reads the same
YAML once more with line numbers, and only files that loaded.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import yaml

from connector.config import Config
from connector.routing.nlu_data import OUT_OF_SCOPE_INTENTS, display_name


@dataclass(frozen=True)
class Finding:
    """One warning, where it is."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


def lint(config: Config) -> list[Finding]:
    """Every warning of the config's NLU files and routes."""
    found: list[Finding] = []
    intents: dict[str, tuple[str, int]] = {}  # intent -> where it first appears
    for path in config.nlu_files:
        if path.suffix.lower() in (".yml", ".yaml"):
            _lint_yaml(path, found, intents)
    _lint_routes(config, intents, found)
    return found


def _lint_yaml(path: Path, found: list[Finding], intents: dict[str, tuple[str, int]]) -> None:
    name = display_name(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # nlu_data reports it as an error
    items = _get(root, "nlu")
    if not isinstance(items, yaml.SequenceNode):
        return
    for item in items.value:
        intent = _get(item, "intent")
        examples = _get(item, "examples")
        if not isinstance(intent, yaml.ScalarNode) or not isinstance(examples, yaml.ScalarNode):
            continue
        label, line = str(intent.value).strip(), intent.start_mark.line + 1
        intents.setdefault(label, (name, line))
        seen: dict[str, int] = {}
        # A block scalar's text starts on the line after its indicator.
        first = examples.start_mark.line + (2 if examples.style in ("|", ">") else 1)
        for n, text in enumerate(str(examples.value).splitlines()):
            text = " ".join(text.strip().removeprefix("-").split()).casefold()
            if not text:
                continue
            if text in seen:
                said = f"{label}: example given twice (first on line {seen[text]})"
                found.append(Finding(name, first + n, said))
            else:
                seen[text] = first + n
        if len(seen) == 1 and label not in OUT_OF_SCOPE_INTENTS:
            said = f"intent {label!r} has one example: too few to learn it from; add a few more"
            found.append(Finding(name, line, said))


def _lint_routes(config: Config, intents: dict[str, tuple[str, int]], found: list[Finding]) -> None:
    lines = _route_lines(config.dir / "routing.yaml")
    routes = config.routing.routes
    first: dict[str, int] = {}  # provider -> how many intents it is the first to serve
    for intent, (file, line) in sorted(intents.items()):
        if intent in OUT_OF_SCOPE_INTENTS:
            continue
        serving = [
            n for n, r in routes.items() if any(fnmatch.fnmatchcase(intent, p) for p in r.intents)
        ]
        if not serving:
            fallback = config.routing.fallback
            said = (
                f"intent {intent!r} is routed to no provider: it goes to the fallback {fallback!r}"
            )
            found.append(Finding(file, line, said))
        else:
            first[serving[0]] = first.get(serving[0], 0) + 1
        if len(serving) > 1:
            head, *rest = serving
            said = (
                f"intent {intent!r} is served by {', '.join(serving)}: "
                f"{', '.join(rest)} {'takes' if len(rest) == 1 else 'take'} it only when "
                f"{head} cannot"
            )
            found.append(Finding("routing.yaml", lines.get(rest[0]), said))
    scoped = sum(1 for i in intents if i not in OUT_OF_SCOPE_INTENTS)
    if config.routing.nlu.threshold_on == "provider" and scoped > 1:
        for provider, count in first.items():
            if count == scoped:
                said = (
                    f"nlu.threshold_on is provider, and {provider} is the first to serve every"
                    " intent: judged per provider, only the out-of-scope class can tell a"
                    " message from one it serves"
                )
                found.append(Finding("routing.yaml", lines.get(provider), said))


def _route_lines(path: Path) -> dict[str, int]:
    """Route name -> its line in routing.yaml."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    routes = _get(root, "routes")
    if not isinstance(routes, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in routes.value}


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            found: yaml.Node = v
            return found
    return None
