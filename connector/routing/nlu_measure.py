"""What ``midtier nlu eval`` measures of one trained classifier: quality figures from its
probabilities, the out-of-scope threshold tuned on held-out data, per-message latency, and
start-up time and memory of loading the saved model in a fresh process."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from connector.routing.nlu import TierClassifier, out_of_scope_index
from connector.routing.nlu_data import OUT_OF_SCOPE_INTENTS
from connector.routing.nlu_groups import Groups

THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.005), 3)
"""The thresholds tuning tries."""
OOS_RECALL_TARGET = 0.70
"""The operating point: the lowest threshold whose out-of-scope recall on the held-out data
reaches this (so in-scope accuracy is as high as that recall allows)."""
_Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Readings:
    """A classifier's reading of labelled messages, before any threshold."""

    gold: list[str]
    best: list[str]  # top in-scope intent
    top: _Array  # its probability
    beaten: npt.NDArray[np.bool_]  # the out-of-scope class won

    @classmethod
    def of(
        cls,
        probs: _Array,
        intents: Sequence[str],
        gold: Sequence[str],
        groups: Groups | None = None,
    ) -> Readings:
        """From ``probabilities_many`` rows (columns in ``intents`` order); with ``groups``,
        as ``classify`` judges per provider (the best provider's likeliest intent, its
        confidence over its baseline, whether the out-of-scope class outweighs its sum)."""
        gold = ["oos" if g in OUT_OF_SCOPE_INTENTS else g for g in gold]
        if groups is not None:
            chosen, mass, outweighed = groups.judge_many(probs)
            named = [intents[i] for i in chosen.tolist()]
            return cls(list(gold), named, mass, np.asarray(outweighed, dtype=bool))
        oos = out_of_scope_index(intents)
        beaten = np.zeros(len(gold), dtype=bool)
        scoped = probs.copy()
        if oos is not None:
            beaten = probs.argmax(axis=1) == oos
            scoped[:, oos] = -1.0
        names = np.array(intents)
        best = names[scoped.argmax(axis=1)].tolist() if len(gold) else []
        return cls(list(gold), best, scoped.max(axis=1, initial=0.0), beaten)

    @property
    def has_out_of_scope(self) -> bool:
        """Whether any of the messages is labelled out of scope."""
        return "oos" in self.gold

    def rejected(self, threshold: float) -> npt.NDArray[np.bool_]:
        """Which messages the classifier calls out of scope at ``threshold``."""
        return self.beaten | (self.top < threshold)


def figures(
    readings: Readings, threshold: float, domains: dict[str, str] | None
) -> dict[str, float | None]:
    """In-scope accuracy (a rejected in-scope message is wrong), out-of-scope recall and
    precision, and routing accuracy (in-scope messages sent to their intent's provider), 0..1.
    The out-of-scope figures are None without out-of-scope messages, routing without domains."""
    gold, best = np.array(readings.gold), np.array(readings.best)
    out = readings.rejected(threshold)
    inside = gold != "oos"
    right = (best == gold) & ~out
    result: dict[str, float | None] = {
        "in_scope_accuracy": float(right[inside].mean()) if inside.any() else None,
        "oos_recall": None,
        "oos_precision": None,
        "routing_accuracy": None,
    }
    if readings.has_out_of_scope:
        result["oos_recall"] = float(out[~inside].mean())
        result["oos_precision"] = float((~inside)[out].mean()) if out.any() else 0.0
    if domains is not None and inside.any():
        provider = np.array([domains.get(b, "") for b in best])
        wanted = np.array([domains.get(g, "?") for g in gold])
        result["routing_accuracy"] = float(((provider == wanted) & ~out)[inside].mean())
    return result


def tune(readings: Readings, *, target: float = OOS_RECALL_TARGET) -> float:
    """The lowest threshold whose out-of-scope recall reaches ``target`` (the highest tried
    when none does)."""
    inside = np.array(readings.gold) != "oos"
    for threshold in THRESHOLDS:
        if readings.rejected(float(threshold))[~inside].mean() >= target:
            return float(threshold)
    return float(THRESHOLDS[-1])


def tune_balanced(readings: Readings) -> float:
    """The threshold that maximizes in-scope accuracy + out-of-scope recall."""

    def score(threshold: float) -> float:
        f = figures(readings, threshold, None)
        return (f["in_scope_accuracy"] or 0.0) + (f["oos_recall"] or 0.0)

    return max((float(t) for t in THRESHOLDS), key=score)


def latency(classifier: TierClassifier, texts: Sequence[str]) -> dict[str, float]:
    """Median and p99 of ``classify`` over single messages, one after another, in ms: wall
    time, and the thread's CPU time (what the machine's other work does not move). After one
    untimed pass over a few hundred of them, and with what exists frozen out of the garbage
    collector's walks, as a running server has it (``midtier run`` freezes after start-up)."""
    for text in texts[:500]:
        classifier.classify(text)
    wall, cpu = np.empty(len(texts)), np.empty(len(texts))
    gc.collect()
    gc.freeze()
    try:
        for i, text in enumerate(texts):
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            classifier.classify(text)
            cpu[i] = time.thread_time_ns() - start_cpu
            wall[i] = time.perf_counter_ns() - start
    finally:
        gc.unfreeze()
    p50, p99, cpu50, cpu99 = (
        float(np.percentile(a, q)) / 1e6 for a in (wall, cpu) for q in (50, 99)
    )
    return {"p50_ms": p50, "p99_ms": p99, "cpu_p50_ms": cpu50, "cpu_p99_ms": cpu99}


_LOAD = """
import json, sys, time
from pathlib import Path
from connector.routing.nlu import tier_class, tier_module
def rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0
cls = tier_class(tier_module(sys.argv[1]))
before = rss()
start = time.perf_counter()
cls.load(Path(sys.argv[2]), sys.argv[3])
took = time.perf_counter() - start
print(json.dumps({"startup_s": took, "memory_mb": (rss() - before) / 2**20}))
"""


def startup(tier: str, classifier: TierClassifier, key: str, workdir: Path) -> dict[str, float]:
    """Save the model, then load it in a fresh Python process (its tier module imported first,
    untimed): seconds the load took and the process's RSS growth over it, in MB."""
    path = workdir / f"{tier}.model"
    classifier.save(path, key)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, tier, str(path), key],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading the saved {tier} model failed: {done.stderr.strip()[-500:]}")
    loaded: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded
