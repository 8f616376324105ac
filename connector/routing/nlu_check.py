"""``midtier nlu eval --test FILE``: the deployment's own classifier (its config's NLU data
and ``routing.yaml`` tier and threshold, trained or loaded from ``<data>/nlu-cache``, as the
server does) against a test file of Rasa NLU YAML or CSV ``text,intent``.

It prints in-scope accuracy, the out-of-scope figures when the file has an out-of-scope class
(``oos`` / ``out_of_scope``), the most confused intent pairs, and with ``--confusion FILE.png``
draws the confusion matrix (``pip install 'midtier[plots]'``, matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from connector.cli_progress import Bar
from connector.errors import ConfigErrors
from connector.routing.nlu_data import OUT_OF_SCOPE_INTENTS, load_training_data

OUT = "(out of scope)"
PAIRS_SHOWN = 10


def check(args: argparse.Namespace) -> int:
    """Score the deployment's model on ``args.test``; exit 2 for bad files or tiers."""
    from connector.config import load_config
    from connector.routing.nlu import classifier_for

    try:
        config = load_config(args.config, found=[])
        test = load_training_data([args.test])
        classifier, _ = classifier_for(
            config.routing,
            config.nlu_files,
            Path(args.data_dir) / "nlu-cache",
            progress=Bar("training the deployment's model"),
        )
    except ConfigErrors as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return 2
    bar, truth, said = Bar("classifying the test file"), [], []
    for n, (text, intent) in enumerate(test.examples, 1):
        result = classifier.classify(text)
        truth.append(OUT if intent in OUT_OF_SCOPE_INTENTS else intent)
        said.append(OUT if result.out_of_scope or result.name is None else result.name)
        bar(n, len(test.examples))
    found = figures(truth, said)
    if args.confusion is not None:
        try:
            draw(truth, said, Path(args.confusion))
        except ImportError:
            print(
                "error: --confusion needs matplotlib: pip install 'midtier[plots]'", file=sys.stderr
            )
            return 2
        found["confusion_png"] = str(args.confusion)
    print(json.dumps(found) if args.json else render(found))
    return 0


def figures(truth: list[str], said: list[str]) -> dict[str, Any]:
    """Accuracy over in-scope examples, out-of-scope recall / precision (None without any
    out-of-scope example), and the most frequent (expected, answered) mistakes."""
    scoped = [(t, s) for t, s in zip(truth, said, strict=True) if t != OUT]
    oos = [s for t, s in zip(truth, said, strict=True) if t == OUT]
    answered_out = sum(s == OUT for s in said)
    mistakes = Counter((t, s) for t, s in zip(truth, said, strict=True) if t != s)
    return {
        "examples": len(truth),
        "in_scope_accuracy": sum(t == s for t, s in scoped) / len(scoped) if scoped else None,
        "oos_recall": sum(s == OUT for s in oos) / len(oos) if oos else None,
        "oos_precision": (
            sum(s == OUT for s in oos) / answered_out if oos and answered_out else None
        ),
        "confused": [
            {"expected": t, "answered": s, "count": n}
            for (t, s), n in mistakes.most_common(PAIRS_SHOWN)
        ],
    }


def render(found: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    lines = [
        f"{found['examples']} test examples",
        f"in-scope accuracy: {pct(found['in_scope_accuracy'])}",
        f"out-of-scope recall: {pct(found['oos_recall'])}, "
        f"precision: {pct(found['oos_precision'])}",
        "",
        "most confused (expected -> answered: times):" if found["confused"] else "no mistakes",
    ]
    lines += [f"  {c['expected']} -> {c['answered']}: {c['count']}" for c in found["confused"]]
    if "confusion_png" in found:
        lines += ["", f"confusion matrix: {found['confusion_png']}"]
    return "\n".join(lines)


def draw(truth: list[str], said: list[str], path: Path) -> None:
    """The confusion matrix as a PNG: rows the expected intent, columns the answer."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted(set(truth) | set(said), key=lambda name: (name == OUT, name))
    index = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, s in zip(truth, said, strict=True):
        matrix[index[t], index[s]] += 1
    size = max(4.0, 0.35 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("answered")
    axes.set_ylabel("expected")
    if len(labels) <= 30:
        for (row, col), count in np.ndenumerate(matrix):
            if count:
                axes.text(col, row, str(count), ha="center", va="center", fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
