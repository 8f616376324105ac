"""Intent examples in CSV: the header ``text,intent``, then one ``text,intent`` row each.

Only the file's form is checked here (its header, two fields a row, UTF-8); ``nlu_data``
checks the texts and intent names as it checks those of Rasa's YAML files. Problems name the
file and the line (``ConfigError``); blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from connector.errors import ConfigError


def csv_examples(path: Path, name: str, errors: list[ConfigError]) -> list[tuple[str, str, str]]:
    """``(key, text, intent)`` per row, ``key`` naming its line; problems go to ``errors``."""
    try:
        reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
        header = next(reader, [])
    except OSError as exc:
        errors.append(ConfigError(name, "", f"cannot read: {exc.strerror or exc}"))
        return []
    except (csv.Error, UnicodeDecodeError) as exc:
        errors.append(ConfigError(name, "line 1", f"invalid CSV: {exc}"))
        return []
    if [c.strip() for c in header] != ["text", "intent"]:
        got = ",".join(header) if header else "an empty file"
        errors.append(
            ConfigError(name, "line 1", f"expected the header 'text,intent', got {got!r}")
        )
        return []
    rows: list[tuple[str, str, str]] = []
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            errors.append(ConfigError(name, f"line {reader.line_num}", f"invalid CSV: {exc}"))
            return rows
        if row is None:
            return rows
        key = f"line {reader.line_num}"
        if not "".join(row).strip():
            continue
        if len(row) != 2:
            errors.append(
                ConfigError(name, key, "expected a text (quoted if it has commas), a comma and "
                            f"an intent name; got {len(row)} field(s): {row!r}")
            )  # fmt: skip
            continue
        rows.append((key, row[0], row[1]))
