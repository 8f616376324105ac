"""The examples of one NLU YAML item: a block string of ``- `` lines or a list of
``{text, metadata}``, whitespace collapsed, entity annotations checked (as Rasa parses them)
and, for intents, stripped to their text."""

from __future__ import annotations

import json
import re
from typing import Any

from connector.errors import ConfigError

# Rasa's own annotation pattern (rasa/shared/nlu/training_data/entities_parser.py).
ENTITY_RE = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\]"
    r"(\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)"
    r"|\{(?P<entity_dict>[^}]+?)\}"
    r"|\[(?P<list_entity_dicts>.*?)\])"
)
SPACES = re.compile(r"\s+")
_EXAMPLES_HINT = "a block string of '- ' lines or a list of {text, metadata}"


def strip_entities(text: str) -> str:
    """``"pay [$45](amount) now"`` -> ``"pay $45 now"`` (every Rasa annotation form)."""
    return ENTITY_RE.sub(lambda m: m.group("entity_text"), text)


def examples(
    raw: Any, name: str, key: str, errors: list[ConfigError], *, strip: bool
) -> list[tuple[str, str]]:
    """``(key, text)`` per example, text whitespace-collapsed and (for intents) annotation-free."""
    found: list[tuple[str, str]] = []
    before = len(errors)
    if raw is None:
        errors.append(ConfigError(name, key, f"missing: expected {_EXAMPLES_HINT}"))
        return found
    if isinstance(raw, str):
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            if not line.startswith("-"):
                errors.append(
                    ConfigError(name, key, f"line {n}: expected '- ' and an example, got {line!r}")
                )
                continue
            found.append((key, line[1:]))
    elif isinstance(raw, list):
        for j, entry in enumerate(raw):
            text = entry.get("text") if isinstance(entry, dict) else None
            if not isinstance(text, str):
                sub = f"{key}[{j}].text" if isinstance(entry, dict) else f"{key}[{j}]"
                errors.append(
                    ConfigError(
                        name, sub, f"expected a mapping with a string 'text', got {entry!r}"
                    )
                )
                continue
            found.append((f"{key}[{j}]", text))
    else:
        errors.append(
            ConfigError(name, key, f"expected {_EXAMPLES_HINT}, got {type(raw).__name__}")
        )
        return []
    texts: list[tuple[str, str]] = []
    for ex_key, text in found:
        if strip:
            _check_annotations(text, name, ex_key, errors)
            text = strip_entities(text)
        text = SPACES.sub(" ", text).strip()
        if text:
            texts.append((ex_key, text))
        else:
            errors.append(ConfigError(name, ex_key, "empty example"))
    if not texts and len(errors) == before:
        errors.append(ConfigError(name, key, f"no examples: expected {_EXAMPLES_HINT}"))
    return texts


def _check_annotations(text: str, name: str, key: str, errors: list[ConfigError]) -> None:
    """JSON-style annotations must parse, as Rasa requires when it trains."""
    for match in ENTITY_RE.finditer(text):
        blob, single = match.group("entity_dict"), True
        if blob is None:
            blob, single = match.group("list_entity_dicts"), False
        if blob is None:
            continue
        try:
            parsed = json.loads("{" + blob + "}" if single else "[" + blob + "]")
        except json.JSONDecodeError:
            parsed = None
        dicts = [parsed] if single else parsed
        if not isinstance(dicts, list) or not all(
            isinstance(d, dict) and "entity" in d for d in dicts
        ):
            errors.append(
                ConfigError(
                    name,
                    key,
                    f"bad entity annotation {match.group(0)!r}: expected JSON with an 'entity' key",
                )
            )
