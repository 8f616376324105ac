"""Quality and speed of the accurate classifier tier (``midtier[embeddings]``) on CLINC150.

Trains on ``train`` + ``oos_train`` (the out-of-scope examples are one class), tunes the
out-of-scope threshold on ``val`` + ``oos_val`` only, and reports on ``test`` + ``oos_test``:
in-scope accuracy (a rejected in-scope message counts as wrong), out-of-scope recall and
precision, routing accuracy (each of the 10 domains of ``domains.json`` is one provider,
out of scope the fallback; over in-scope test messages), classify latency for single
messages on one thread, training and load time; then the same trained on 10 examples per
intent (three seeds, their mean)::

    /path/to/venv/bin/python benchmarks/nlu_accurate.py [--data DIR] [--few-shot-seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connector.routing.nlu_accurate import AccurateClassifier, cache_key, train  # noqa: E402
from connector.routing.nlu_data import TrainingData  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "clinc150"
Pairs = list[list[str]]
Floats = npt.NDArray[np.float64]


def step(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def bar(done: int, total: int) -> None:
    if done == total or done % 20 == 0:
        print(f"\r    step {done}/{total}", end="\n" if done == total else "", file=sys.stderr,
              flush=True)  # fmt: skip


def training_data(rows: Pairs) -> TrainingData:
    pairs = sorted({(text, intent) for text, intent in rows}, key=lambda p: (p[1], p[0]))
    return TrainingData(examples=pairs, intents=sorted({i for _, i in pairs}))


class Scored:
    """One split's probabilities, read at any threshold."""

    def __init__(self, model: AccurateClassifier, rows: Pairs) -> None:
        probs = model.probabilities_many([text for text, _ in rows])
        oos = np.array([name == "oos" for name in model.intents])
        scoped = np.where(oos, -1.0, probs)
        names = np.array(model.intents)
        self.top = scoped.max(axis=1)
        self.name = names[scoped.argmax(axis=1)]
        self.oos_wins = probs[:, oos].sum(axis=1) > self.top
        self.truth = np.array([intent for _, intent in rows])

    def rejected(self, limit: float) -> npt.NDArray[np.bool_]:
        return self.oos_wins | (self.top < limit)


def figures(
    ins: Scored, oos: Scored, limit: float, domain: dict[str, str]
) -> tuple[float, float, float, float]:
    """In-scope accuracy, oos recall, oos precision, routing accuracy (in %)."""
    rejected, oos_rejected = ins.rejected(limit), oos.rejected(limit)
    accuracy = np.mean((ins.name == ins.truth) & ~rejected)
    recall = np.mean(oos_rejected)
    flagged = rejected.sum() + oos_rejected.sum()
    precision = oos_rejected.sum() / flagged if flagged else 1.0
    routed = np.array([domain[n] for n in ins.name]) == np.array([domain[t] for t in ins.truth])
    routing = np.mean(routed & ~rejected)
    return tuple(100 * float(x) for x in (accuracy, recall, precision, routing))  # type: ignore[return-value]


def tune(ins: Scored, oos: Scored, domain: dict[str, str]) -> dict[str, float]:
    """Thresholds chosen on val + oos_val: max of in-scope accuracy + oos recall (balanced),
    and max of the pooled accuracy (messages of both kinds counted alike)."""
    grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
    n_in, n_oos = len(ins.truth), len(oos.truth)

    def score(limit: float, pooled: bool) -> float:
        acc, recall, _, _ = figures(ins, oos, limit, domain)
        return acc * n_in + recall * n_oos if pooled else acc + recall

    return {
        "balanced": float(max(grid, key=lambda t: score(float(t), False))),
        "pooled": float(max(grid, key=lambda t: score(float(t), True))),
    }


def latency(model: AccurateClassifier, texts: list[str]) -> dict[str, float]:
    """Median and p99 of one classify call: wall clock and this thread's CPU time, in ms."""
    for text in texts[:50]:
        model.classify(text)
    wall, cpu = [], []
    for text in texts:
        w, c = time.perf_counter_ns(), time.thread_time_ns()
        model.classify(text)
        cpu.append(time.thread_time_ns() - c)
        wall.append(time.perf_counter_ns() - w)
    ms = {"wall": np.array(wall) / 1e6, "cpu": np.array(cpu) / 1e6}
    return {f"{k} {q}": float(np.percentile(v, p)) for k, v in ms.items()
            for q, p in (("p50", 50), ("p99", 99))}  # fmt: skip


def few_shot(raw: dict[str, Pairs], seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[list[str]]] = {}
    for row in raw["train"] + raw["oos_train"]:
        by_intent.setdefault(row[1], []).append(row)
    return [rows[i] for _, rows in sorted(by_intent.items())
            for i in rng.choice(len(rows), 10, replace=False)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CLINC150 directory")
    parser.add_argument("--few-shot-seeds", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="only the 10-example runs")
    args = parser.parse_args()
    raw: dict[str, Pairs] = json.loads((args.data / "data_full.json").read_text("utf-8"))
    domains: dict[str, list[str]] = json.loads((args.data / "domains.json").read_text("utf-8"))
    domain = {intent: name for name, intents in domains.items() for intent in intents}
    domain["oos"] = "fallback"
    header = "| run | threshold | in-scope acc. | oos recall | oos precision | routing acc. |"
    rows: list[str] = []

    def evaluate(model: AccurateClassifier, label: str) -> dict[str, tuple[float, ...]]:
        val = Scored(model, raw["val"]), Scored(model, raw["oos_val"])
        test = Scored(model, raw["test"]), Scored(model, raw["oos_test"])
        found: dict[str, tuple[float, ...]] = {}
        for how, limit in tune(*val, domain).items():
            found[how] = (limit, *figures(*test, limit, domain))
        found["no threshold"] = (0.0, *figures(*test, 0.0, domain))
        for how, (limit, *f) in found.items():
            rows.append(f"| {label}, {how} | {limit:.2f} | "
                        + " | ".join(f"{x:.1f}" for x in f) + " |")  # fmt: skip
        return found

    if not args.skip_full:
        data = training_data(raw["train"] + raw["oos_train"])
        step(f"training on {len(data.examples)} examples, {len(data.intents)} classes")
        start = time.perf_counter()
        model = train(data, progress=bar)
        train_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            path, key = Path(tmp) / "model.zip", cache_key(data)
            model.save(path, key)
            size_mb = path.stat().st_size / 2**20
            start = time.perf_counter()
            model = AccurateClassifier.load(path, key)
            load_s = time.perf_counter() - start
        step("scoring val, oos_val, test, oos_test")
        evaluate(model, "full")
        step("timing classify on single messages")
        speed = latency(model, [t for t, _ in raw["test"] + raw["oos_test"]][::5])
        print(f"full: trained in {train_s:.0f} s; model file {size_mb:.1f} MB, loads in "
              f"{load_s:.2f} s; classify (1,100 messages, one thread) " + ", ".join(
                  f"{k} {v:.2f} ms" for k, v in speed.items()))  # fmt: skip

    found_runs = []
    for seed in range(args.few_shot_seeds):
        data = training_data(few_shot(raw, seed))
        step(f"10 per intent, seed {seed}: training on {len(data.examples)} examples")
        start = time.perf_counter()
        model = train(data, progress=bar)
        print(f"10 per intent, seed {seed}: trained in {time.perf_counter() - start:.0f} s")
        found_runs.append(evaluate(model, f"10/intent seed {seed}"))
    for how in found_runs[0] if found_runs else []:
        mean = np.mean([run[how] for run in found_runs], axis=0)
        rows.append(f"| 10/intent mean of {len(found_runs)}, {how} | {mean[0]:.2f} | "
                    + " | ".join(f"{x:.1f}" for x in mean[1:]) + " |")  # fmt: skip
    print("\n" + header + "\n|---|---|---|---|---|---|\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
