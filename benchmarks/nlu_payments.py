"""Training time and per-message classification time on the default deployment's NLU data.

Trains the default classifier tier on ``bot_configs/nlu`` the way ``midtier run`` does, several
times, then times ``classify`` over the training texts and a few edge cases (also with 8 MB
of memory written before each message, as a server's other work cools the CPU caches), next
to scikit-learn's own ``predict_proba`` on one message (the path classification must not take)::

    .venv/bin/python benchmarks/nlu_payments.py [--config bot_configs] [--trainings 5] [--rounds 20]

Prints one table; exits 1 when a figure is over its budget (``--max-train-s``,
``--max-classify-us``: median), so it can guard a change by hand or in a scheduled job.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connector.config import load_config  # noqa: E402
from connector.routing.nlu_data import load_training_data  # noqa: E402
from connector.routing.nlu_default import DefaultClassifier, ModelArrays, fit, train  # noqa: E402
from connector.routing.nlu_static import packaged  # noqa: E402

COOL_BYTES = 8 << 20  # more than the L2 caches of the machines measured here
EDGE_CASES = [
    "",
    "!!!",
    "caf\u00e9 cr\u00e8me, s\u2019il vous pla\u00eet",
    "x" * 300,
    "hi I was charged twice for my coffee this morning can you help",
    "can you tell me please how much money is currently in my checking account",
]


def step(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def micros(runs: list[int]) -> tuple[float, float]:
    """Median and p99 of nanosecond timings, in microseconds."""
    values = np.array(runs) / 1000
    return float(np.median(values)), float(np.percentile(values, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "bot_configs")
    parser.add_argument("--trainings", type=int, default=5, help="training runs (median shown)")
    parser.add_argument("--rounds", type=int, default=20, help="passes over the texts")
    parser.add_argument("--max-train-s", type=float, default=2.0)
    parser.add_argument("--max-classify-us", type=float, default=400.0)
    args = parser.parse_args()

    data = load_training_data(load_config(args.config).nlu_files)
    step(
        f"training {args.trainings}x on {len(data.examples)} examples, {len(data.intents)} intents"
    )
    trainings = []
    for _ in range(args.trainings):
        start = time.perf_counter()
        classifier = train(data)
        trainings.append(time.perf_counter() - start)
    train_s = float(np.median(trainings))

    texts = [text for text, _ in data.examples] + EDGE_CASES
    step(f"classifying {len(texts)} texts x {args.rounds}")
    fresh = DefaultClassifier(classifier.arrays)  # cold per-word cache for the first pass
    cold = []
    for text in texts:
        start = time.perf_counter_ns()
        fresh.classify(text)
        cold.append(time.perf_counter_ns() - start)
    warm = []
    for _ in range(args.rounds):
        for text in texts:
            start = time.perf_counter_ns()
            fresh.classify(text)
            warm.append(time.perf_counter_ns() - start)

    step(f"classifying {len(texts)} texts, {COOL_BYTES >> 20} MB written before each")
    junk = np.zeros(COOL_BYTES // 8)
    cooled = []
    for text in texts:
        np.add(junk, 1.0, out=junk)  # as the server's other work between two messages does
        start = time.perf_counter_ns()
        fresh.classify(text)
        cooled.append(time.perf_counter_ns() - start)

    step("timing scikit-learn's predict_proba for comparison")
    pipeline = fit(data)
    assert ModelArrays.from_fitted(pipeline).intents == classifier.intents
    reference = []
    for text in texts[:200]:
        start = time.perf_counter_ns()
        pipeline.model.predict_proba(pipeline.features([text], packaged()))
        reference.append(time.perf_counter_ns() - start)

    cold_median, cold_p99 = micros(cold)
    median, p99 = micros(warm)
    cooled_median, cooled_p99 = micros(cooled)
    sk_median, sk_p99 = micros(reference)
    rows = [
        ("training (median of runs), s", f"{train_s:.3f}", "", f"<= {args.max_train_s:g}",
         train_s <= args.max_train_s),
        ("classify, first pass (cold word cache), us", f"{cold_median:.0f}", f"{cold_p99:.0f}",
         "", True),
        ("classify, us", f"{median:.0f}", f"{p99:.0f}", f"<= {args.max_classify_us:g}",
         median <= args.max_classify_us),
        ("classify, CPU caches cooled before each, us", f"{cooled_median:.0f}",
         f"{cooled_p99:.0f}", "", True),
        ("scikit-learn predict_proba, one message, us", f"{sk_median:.0f}", f"{sk_p99:.0f}",
         "", True),
    ]  # fmt: skip
    print(f"\n{args.config.name}/nlu: {len(data.examples)} examples, {len(data.intents)} intents\n")
    print(f"| {'what':<44} | median | p99    | budget   | ok  |")
    print(f"|{'-' * 46}|--------|--------|----------|-----|")
    for what, mid, high, budget, ok in rows:
        print(f"| {what:<44} | {mid:>6} | {high:>6} | {budget:<8} | {'yes' if ok else 'NO':<3} |")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
