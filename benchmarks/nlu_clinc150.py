"""Intent quality and speed of the embedded classifier on CLINC150 (Larson et al., 2019).

Trains on ``train`` (150 intents, no out-of-scope examples), tunes the out-of-scope threshold on
``val`` + ``oos_val`` only, and reports in-scope accuracy and out-of-scope recall on ``test`` +
``oos_test`` next to the paper's figures, with training time and per-message latency::

    .venv/bin/python benchmarks/nlu_clinc150.py [--data ../shared/data/clinc150/data_full.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connector.routing.nlu import (  # noqa: E402
    CHAR_NGRAMS,
    DEFAULT_THRESHOLD,
    LR_C,
    EmbeddedClassifier,
)
from connector.routing.nlu_data import TrainingData  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "clinc150" / "data_full.json"
PAPER = [  # Table 2, "Full": (method, in-scope accuracy, out-of-scope recall)
    ("paper: Rasa (oos-train)", 91.5, 45.3),
    ("paper: BERT (oos-train)", 96.9, 40.3),
    ("paper: MLP (oos-threshold)", 93.4, 49.1),
    ("paper: BERT (oos-threshold)", 96.2, 52.3),
]
Pairs = list[list[str]]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def step(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def probabilities(classifier: EmbeddedClassifier, rows: Pairs) -> Floats:
    return np.array([classifier.probabilities(text) for text, _ in rows])


def scores(
    classifier: EmbeddedClassifier, probs: Floats, oos_probs: Floats, rows: Pairs
) -> tuple[Bools, Floats, Floats]:
    """(top intent right?, top probability) for in-scope rows; top probability for oos rows."""
    names = np.array(classifier.intents)
    right = names[probs.argmax(axis=1)] == np.array([intent for _, intent in rows])
    return right, probs.max(axis=1), oos_probs.max(axis=1)


def figures(right: Bools, top: Floats, oos_top: Floats, limit: float) -> tuple[float, float]:
    """In-scope accuracy (a rejected in-scope message counts as wrong) and oos recall, in %."""
    return 100 * float(np.mean(right & (top >= limit))), 100 * float(np.mean(oos_top < limit))


def tune(right: Bools, top: Floats, oos_top: Floats, *, pooled: bool) -> float:
    """The threshold that maximizes in-scope accuracy + oos recall (equal weight), or, pooled,
    the accuracy over all messages with oos as one more class (weighted by message counts)."""
    n_in, n_oos = (len(right), len(oos_top)) if pooled else (1, 1)

    def score(limit: float) -> float:
        acc, recall = figures(right, top, oos_top, limit)
        return acc * n_in + recall * n_oos

    return float(max(np.round(np.arange(0.0, 1.0, 0.005), 3), key=lambda t: score(float(t))))


def latency(classifier: EmbeddedClassifier, texts: list[str]) -> tuple[float, float, float]:
    """Median (first pass, cold word cache), median and p99 (second pass) of classify, in us."""
    passes = []
    for _ in range(2):
        runs = []
        for text in texts:
            start = time.perf_counter_ns()
            classifier.classify(text)
            runs.append(time.perf_counter_ns() - start)
        passes.append(np.array(runs) / 1000)
    cold, warm = passes
    return float(np.median(cold)), float(np.median(warm)), float(np.percentile(warm, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CLINC150 data_full.json")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"error: CLINC150 data not found at {args.data} (pass --data PATH)", file=sys.stderr)
        return 2
    step(f"loading {args.data}")
    raw: dict[str, Pairs] = json.loads(args.data.read_text(encoding="utf-8"))
    pairs = sorted({(text, intent) for text, intent in raw["train"]}, key=lambda p: (p[1], p[0]))
    data = TrainingData(examples=pairs, intents=sorted({i for _, i in pairs}))

    step(f"training on {len(pairs)} examples, {len(data.intents)} intents (takes a minute)")
    start = time.perf_counter()
    classifier = EmbeddedClassifier.train(data)
    train_s = time.perf_counter() - start

    step("tuning the out-of-scope threshold on val + oos_val")
    val = scores(classifier, probabilities(classifier, raw["val"]),
                 probabilities(classifier, raw["oos_val"]), raw["val"])  # fmt: skip
    balanced, pooled = tune(*val, pooled=False), tune(*val, pooled=True)

    step("scoring test + oos_test")
    test_probs = probabilities(classifier, raw["test"])
    test = scores(classifier, test_probs, probabilities(classifier, raw["oos_test"]), raw["test"])
    raw_acc = 100 * float(np.mean(test[0]))
    step("timing classify over the test set")
    cold, median, p99 = latency(classifier, [t for t, _ in raw["test"] + raw["oos_test"]])

    ours = [
        (f"midtier, threshold {balanced:.3f} (val: max acc + recall)",
         *figures(*test, balanced), True),
        (f"midtier, threshold {pooled:.3f} (val: max pooled accuracy)",
         *figures(*test, pooled), False),
        (f"midtier, default threshold {DEFAULT_THRESHOLD}",
         *figures(*test, DEFAULT_THRESHOLD), False),
        ("midtier, no threshold", raw_acc, 0.0, False),
    ]  # fmt: skip
    model = f"word(1,2)+char_wb{CHAR_NGRAMS} tf-idf, LogisticRegression(C={LR_C})"
    print(f"\nCLINC150 full: train {len(pairs)}, test {len(raw['test'])} + oos_test "
          f"{len(raw['oos_test'])}; embedded = {model}\n")  # fmt: skip
    print(f"| {'method':<52} | in-scope acc. | oos recall | train s | classify us median/p99 |")
    print(f"|{'-' * 54}|---------------|------------|---------|------------------------|")
    for name, acc, recall, timed in [*((*row, False) for row in PAPER), *ours]:
        train = f"{train_s:.1f}" if timed else ""
        speed = f"{median:.0f} / {p99:.0f}" if timed else ""
        print(f"| {name:<52} | {acc:>13.1f} | {recall:>10.1f} | {train:>7} | {speed:>22} |")
    print(f"\nlatency over test + oos_test, second pass; first pass (cold word cache) median "
          f"{cold:.0f} us")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
