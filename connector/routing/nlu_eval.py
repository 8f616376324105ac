"""``midtier nlu eval``: how well and how fast each classifier tier reads intents.

midtier nlu eval --dataset clinc150 [--data PATH] [--tier default|accurate|all] [--few-shot]
                 [--json]
midtier nlu eval --train TRAIN --test TEST [--val VAL] [--tier ...] [--json]

Trains each tier on the training examples (CLINC150: train + oos_train), tunes the out-of-scope
threshold on the held-out ones only (val + oos_val; without ``--val``, the tier's own default
threshold), and reports on the test examples (test + oos_test). Files are Rasa NLU YAML or CSV
(``text,intent``); an ``oos`` or ``out_of_scope`` intent marks out-of-scope examples. One table
(or, with ``--json``, one object per tier per line), progress bars on stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from connector.cli_nlu import FEW_SHOT, FEW_SHOT_SEEDS, add_arguments
from connector.cli_progress import Bar
from connector.errors import ConfigErrors
from connector.routing.nlu import TIERS, TierUnavailable, tier_module
from connector.routing.nlu_data import TrainingData, load_training_data
from connector.routing.nlu_groups import Groups
from connector.routing.nlu_measure import Readings, figures, latency, startup, tune, tune_balanced

KEYS = ("tier", "in_scope_accuracy", "oos_recall", "oos_precision", "routing_accuracy",
        "p50_ms", "p99_ms", "train_s", "startup_s")  # fmt: skip
PUBLISHED = [  # (method, in-scope accuracy, out-of-scope recall), in %
    ("Larson et al. 2019 (Table 2, Full): Rasa", 91.5, 45.3),
    ("Larson et al. 2019: DialogFlow", 91.7, 14.0),
    ("Larson et al. 2019: MLP", 93.5, 47.4),
    ("Larson et al. 2019: BERT", 96.9, 40.3),
    ("Larson et al. 2019: BERT, threshold variant", 96.2, 52.3),
    ("measured elsewhere on this machine: TF-IDF + logistic regression", 91.6, 63.3),
    ("measured elsewhere on this machine: MiniLM + logistic regression", 94.5, 71.8),
]
Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Dataset:
    """Training data, held-out examples for the threshold (or None), test examples, and the
    provider of each intent when the data set has domains."""

    name: str
    train: TrainingData
    val: Pairs | None
    test: Pairs
    domains: dict[str, str] | None = None


def training_data(pairs: Sequence[tuple[str, str]]) -> TrainingData:
    """Deduplicated ``(text, intent)`` pairs, sorted as ``load_training_data`` sorts them."""
    examples = sorted(set(pairs), key=lambda p: (p[1], p[0]))
    return TrainingData(examples=examples, intents=sorted({i for _, i in examples}))


def clinc150(path: Path, *, few_shot: int | None = None, seed: int = 0) -> Dataset:
    """CLINC150 (``data_full.json``, ``domains.json`` beside it); with ``few_shot``, that many
    training examples per intent (out-of-scope class included), drawn with ``seed``."""
    raw: dict[str, list[list[str]]] = json.loads(path.read_text(encoding="utf-8"))

    def pairs(*keys: str) -> Pairs:
        return [(str(t), str(i)) for key in keys for t, i in raw[key]]

    train = pairs("train", "oos_train")
    if few_shot is not None:
        by_intent: dict[str, Pairs] = {}
        for pair in train:
            by_intent.setdefault(pair[1], []).append(pair)
        draw = random.Random(seed)
        train = [p for i in sorted(by_intent) for p in draw.sample(by_intent[i], few_shot)]
    domains_file = path.with_name("domains.json")
    domains = None
    if domains_file.is_file():
        listed: dict[str, list[str]] = json.loads(domains_file.read_text(encoding="utf-8"))
        domains = {intent: domain for domain, intents in listed.items() for intent in intents}
    name = "clinc150" if few_shot is None else f"clinc150, {few_shot} per intent, seed {seed}"
    return Dataset(name, training_data(train), pairs("val", "oos_val"),
                   pairs("test", "oos_test"), domains)  # fmt: skip


def from_files(train: Path, test: Path, val: Path | None) -> Dataset:
    """Rasa NLU YAML or CSV files; raises ``ConfigErrors`` naming the file and line."""
    held_out = load_training_data([val]).examples if val is not None else None
    return Dataset(train.name, load_training_data([train]), held_out,
                   load_training_data([test]).examples)  # fmt: skip


def score(classifier: Any, pairs: Pairs, label: str) -> Readings:
    """Probabilities of every text, 500 at a time (for the progress bar), read as
    ``classify`` reads them (per provider when it has ``groups``)."""
    bar, rows = Bar(label), []
    for start in range(0, len(pairs), 500):
        rows.append(classifier.probabilities_many([t for t, _ in pairs[start : start + 500]]))
        bar(min(start + 500, len(pairs)), len(pairs))
    probs = np.vstack(rows) if rows else np.zeros((0, len(classifier.intents)))
    return Readings.of(probs, classifier.intents, [i for _, i in pairs], classifier.groups)


def evaluate(
    tier: str, data: Dataset, workdir: Path, *, threshold_on: str = "intent"
) -> dict[str, Any]:
    """Train, tune, score and time one tier on one data set: a row of ``KEYS`` and extras.
    ``threshold_on="provider"``: confidence judged per provider, the data set's domains
    standing for providers."""
    module = tier_module(tier)
    start = time.perf_counter()
    classifier = module.train(data.train, progress=Bar(f"{tier}: training"))
    train_s = time.perf_counter() - start
    if threshold_on == "provider":
        if data.domains is None:
            raise ValueError("judging per provider needs a data set with domains")
        classifier.groups = Groups(classifier.intents, data.domains.get, classifier.baseline())
    balanced = None
    if (
        data.val is not None
        and (val := score(classifier, data.val, f"{tier}: val")).has_out_of_scope
    ):
        classifier.threshold, balanced = tune(val), tune_balanced(val)
    test = score(classifier, data.test, f"{tier}: test")
    print(f"{tier}: timing classify, one message at a time", file=sys.stderr)
    timed = latency(classifier, [t for t, _ in data.test])
    loaded = startup(tier, classifier, module.cache_key(data.train), workdir)
    row: dict[str, Any] = {"tier": tier, **figures(test, classifier.threshold, data.domains)}
    row.update(p50_ms=timed["p50_ms"], p99_ms=timed["p99_ms"], train_s=train_s, **loaded)
    row.update(cpu_p50_ms=timed["cpu_p50_ms"], cpu_p99_ms=timed["cpu_p99_ms"])
    row.update(threshold=classifier.threshold, threshold_on=threshold_on, dataset=data.name)
    row.update(train_examples=len(data.train.examples), test_examples=len(data.test))
    if balanced is not None:
        row["balanced"] = {"threshold": balanced, **figures(test, balanced, data.domains)}
    return {k: row[k] for k in (*KEYS, *(k for k in row if k not in KEYS))}


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each figure over draws (also inside ``balanced``; None stays None); the
    draws kept under ``draws``."""

    def mean(values: list[Any]) -> Any:
        if all(isinstance(v, float) for v in values):
            return float(np.mean(values))
        if all(isinstance(v, dict) for v in values):
            return {k: mean([v[k] for v in values]) for k in values[0]}
        return values[0]

    out: dict[str, Any] = {key: mean([r[key] for r in rows]) for key in rows[0]}
    out["dataset"] = rows[0]["dataset"].rsplit(", seed", 1)[0] + f", mean of {len(rows)} draws"
    out["draws"] = [
        {k: r[k] for k in ("in_scope_accuracy", "oos_recall", "threshold")} for r in rows
    ]
    return out


def table(rows: list[dict[str, Any]], *, published: bool) -> str:
    """One markdown table: the published figures, then each tier's measured row."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    head = ("| method | in-scope acc. | OOS recall | OOS precision | routing acc. | p50 ms "
            "| p99 ms | CPU p50 / p99 ms | train s | start-up s | memory MB |")  # fmt: skip
    lines = [head, "|---" * 11 + "|"]
    if published:
        lines += [f"| {m} | {a:.1f} | {r:.1f} |" + " |" * 8 for m, a, r in PUBLISHED]
    for r in rows:
        where = f"threshold {r['threshold']:.3f}"
        if r.get("threshold_on") == "provider":
            where += ", judged per provider"
        lines.append(
            f"| midtier {r['tier']} ({r['dataset']}, {where}) | {pct(r['in_scope_accuracy'])} "
            f"| {pct(r['oos_recall'])} | {pct(r['oos_precision'])} | {pct(r['routing_accuracy'])} "
            f"| {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {r['cpu_p50_ms']:.3f} / {r['cpu_p99_ms']:.3f} | {r['train_s']:.1f} "
            f"| {r['startup_s']:.2f} | {r['memory_mb']:.0f} |"
        )
        if (b := r.get("balanced")) is not None:
            lines.append(
                f"| midtier {r['tier']}, threshold {b['threshold']:.3f} (val: max acc. + recall) "
                f"| {pct(b['in_scope_accuracy'])} | {pct(b['oos_recall'])} "
                f"| {pct(b['oos_precision'])} | {pct(b['routing_accuracy'])} |" + " |" * 6
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate; exit 2 (one line on stderr) for bad files or a tier that is not installed."""
    if args.threshold_on == "provider" and args.dataset is None:
        print("error: --threshold-on provider needs --dataset clinc150 (its domains stand for"
              " providers); the deployment's own model (--test alone) is judged as its"
              " routing.yaml says (nlu.threshold_on)", file=sys.stderr)  # fmt: skip
        return 2
    if args.dataset is None and args.train is None:
        if args.test is None:
            print("error: give --dataset, --train with --test, or --test", file=sys.stderr)
            return 2
        from connector.routing.nlu_check import check

        return check(args)
    tiers = list(TIERS) if args.tier == "all" else [args.tier]
    try:
        for tier in tiers:  # before any training: fail in a second, not after an hour
            tier_module(tier)
        if args.dataset is None:
            if args.test is None:
                print("error: --train needs --test", file=sys.stderr)
                return 2
            draws = [from_files(args.train, args.test, args.val)]
        elif not args.data.is_file():
            print(f"error: CLINC150 not found at {args.data} (pass --data PATH)", file=sys.stderr)
            return 2
        elif args.few_shot:
            draws = [clinc150(args.data, few_shot=FEW_SHOT, seed=s) for s in FEW_SHOT_SEEDS]
        else:
            draws = [clinc150(args.data)]
    except TierUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigErrors as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="midtier-nlu-eval-") as tmp, threadpool_limits(1):
        for tier in tiers:
            on = args.threshold_on
            measured = [evaluate(tier, data, Path(tmp), threshold_on=on) for data in draws]
            rows.append(mean_row(measured) if len(measured) > 1 else measured[0])
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(table(rows, published=args.dataset == "clinc150"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``benchmarks/nlu.py``: the same command without the ``midtier nlu eval`` prefix."""
    parser = argparse.ArgumentParser(prog="nlu eval", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
