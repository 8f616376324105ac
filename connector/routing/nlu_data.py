"""Intent training data in Rasa's NLU YAML format (version "3.1") or CSV, as (text, intent) pairs.

Each ``nlu:`` item has exactly one of ``intent``, ``synonym``, ``regex`` or ``lookup`` plus
``examples`` (a block string of ``- `` lines, or a list of ``{text, metadata}``). Entity
annotations are stripped to their text, since the embedded classifier reads intents only;
synonyms, regexes and lookups are checked for form and otherwise left to Rasa bots.
A ``.csv`` file has the header ``text,intent`` and one example per row. Every problem found
is reported at once as a ``ConfigError`` naming the file and key (for CSV, the line).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.errors import ConfigError, ConfigErrors
from connector.routing.nlu_csv import csv_examples
from connector.routing.nlu_examples import SPACES, examples

KINDS = ("intent", "synonym", "regex", "lookup")
_ITEM_KEYS = {*KINDS, "examples", "metadata"}
# Top-level keys of a Rasa training data file that carry no NLU examples.
_OTHER_TOP_KEYS = {"version", "stories", "rules", "responses", "e2e_tests"}
_NAME = re.compile(r"^[^\s/]+(/[^\s/]+)?$")
OUT_OF_SCOPE_INTENTS = frozenset({"oos", "out_of_scope"})
"""Intent names whose examples are out of scope (no provider serves them): a classifier trains
them as one explicit class and reports a message of that class as out of scope."""


@dataclass(frozen=True)
class TrainingData:
    """Intent examples from one or more NLU files, deduplicated and sorted by (intent, text)."""

    examples: list[tuple[str, str]]
    """``(text, intent)`` pairs, entity annotations stripped."""
    intents: list[str] = field(default_factory=list)
    """Intent names, sorted; retrieval intents keep their full ``faq/opening_hours`` name."""

    def fingerprint(self) -> str:
        """sha256 (hex) of the normalized content: equal for equal data, whatever the file order."""
        blob = json.dumps(self.examples, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def load_training_data(files: list[Path]) -> TrainingData:
    """Read Rasa NLU YAML (or ``.csv``) files; raise ``ConfigErrors`` listing every problem."""
    read = _Read()
    for path in files:
        load = _load_csv if path.suffix.lower() == ".csv" else _load_file
        load(path, display_name(path), read)
    errors, pairs = read.errors, read.pairs
    intents = sorted({intent for _, intent in pairs})
    if not errors and len(intents) < 2:
        where = display_name(files[0]) if len(files) == 1 else "nlu/"
        errors.append(ConfigError(where, "nlu", "expected at least two intents with examples"))
    if errors:
        raise ConfigErrors(errors)
    examples = sorted(pairs, key=lambda p: (p[1], p[0]))
    return TrainingData(examples=examples, intents=intents)


def display_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _load_file(path: Path, name: str, read: _Read) -> None:
    errors = read.errors
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        errors.append(ConfigError(name, "", f"cannot read: {exc.strerror or exc}"))
        return
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        errors.append(ConfigError(name, "", f"invalid YAML: {exc}"))
        return
    if not isinstance(doc, dict):
        errors.append(ConfigError(name, "", "expected a mapping with 'version' and 'nlu'"))
        return
    version = doc.get("version")
    if version is not None and not isinstance(version, str):
        errors.append(
            ConfigError(name, "version", f'expected a quoted string like "3.1", got {version!r}')
        )
    for key in doc:
        if key != "nlu" and key not in _OTHER_TOP_KEYS:
            errors.append(ConfigError(name, str(key), "unknown key: expected 'version' and 'nlu'"))
    items = doc.get("nlu")
    if not isinstance(items, list):
        got = "nothing" if items is None else type(items).__name__
        errors.append(ConfigError(name, "nlu", f"expected a list of intent items, got {got}"))
        return
    for i, item in enumerate(items):
        _load_item(item, name, f"nlu[{i}]", read)


def _load_csv(path: Path, name: str, read: _Read) -> None:
    errors = read.errors
    for key, text, intent in csv_examples(path, name, errors):
        text, intent = SPACES.sub(" ", text).strip(), intent.strip()
        if not text or not _NAME.match(intent):
            errors.append(
                ConfigError(name, key, "expected a text (quoted if it has commas), a comma and "
                            f"an intent name without spaces; got {[text, intent]!r}")
            )  # fmt: skip
            continue
        read.add(text, intent, name, key)


@dataclass
class _Read:
    """What reading the files found: its errors, and the examples so far."""

    errors: list[ConfigError] = field(default_factory=list)
    seen: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # folded -> intent, where
    pairs: set[tuple[str, str]] = field(default_factory=set)  # a set: file order does not matter

    def add(self, text: str, label: str, name: str, key: str) -> None:
        """One example of intent ``label``, found in file ``name`` at ``key``."""
        folded = text.casefold()
        first = self.seen.get(folded)
        if first is None:
            self.seen[folded] = (label, name, key)
        elif first[0] != label:
            self.errors.append(
                ConfigError(
                    name,
                    key,
                    f"{text!r} is also an example of intent {first[0]!r} "
                    f"({first[1]}: {first[2]}); an example must belong to one intent",
                )
            )
            return
        self.pairs.add((text, label))


def _load_item(item: Any, name: str, key: str, read: _Read) -> None:
    errors = read.errors
    if not isinstance(item, dict):
        errors.append(
            ConfigError(
                name, key, f"expected a mapping with one of {', '.join(KINDS)} and 'examples'"
            )
        )
        return
    unknown = sorted(str(k) for k in item if k not in _ITEM_KEYS)
    for k in unknown:
        errors.append(
            ConfigError(
                name,
                f"{key}.{k}",
                f"unknown key: expected one of {', '.join(KINDS)}, 'examples', 'metadata'",
            )
        )
    kinds = [k for k in KINDS if k in item]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        errors.append(
            ConfigError(name, key, f"expected exactly one of {', '.join(KINDS)}; found {found}")
        )
        return
    kind = kinds[0]
    label = item[kind]
    if not isinstance(label, str) or not label.strip():
        hint = (
            " (quote it: YAML reads yes/no/on/off as booleans)" if isinstance(label, bool) else ""
        )
        errors.append(
            ConfigError(name, f"{key}.{kind}", f"expected a non-empty name, got {label!r}{hint}")
        )
        return
    label = label.strip()
    if kind == "intent" and not _NAME.match(label):
        errors.append(
            ConfigError(
                name,
                f"{key}.intent",
                f"expected a name without spaces (retrieval intents: 'faq/topic'), got {label!r}",
            )
        )
        return
    texts = examples(item.get("examples"), name, f"{key}.examples", errors, strip=kind == "intent")
    if kind == "regex":
        for ex_key, text in texts:
            try:
                re.compile(text)
            except re.error as exc:
                errors.append(
                    ConfigError(name, ex_key, f"invalid regular expression {text!r}: {exc}")
                )
    if kind != "intent":
        return
    for ex_key, text in texts:
        read.add(text, label, name, ex_key)
