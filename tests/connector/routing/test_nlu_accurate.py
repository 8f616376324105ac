"""The accurate classifier tier, fine-tuned for a few seconds on a tiny data set.

Quality on CLINC150 and speed are measured, not asserted, in benchmarks/nlu_accurate.py.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from connector.interfaces import IntentClassifier
from connector.routing.nlu_accurate import (
    DEFAULT_THRESHOLD,
    RANKING_SIZE,
    AccurateClassifier,
    cache_key,
    classes,
    train,
)
from connector.routing.nlu_accurate_tune import TuneSettings
from connector.routing.nlu_data import TrainingData
from connector.routing.nlu_groups import Groups

EXAMPLES = {
    "weather": [
        "what's the weather like today", "will it rain tomorrow", "is it sunny outside",
        "how cold is it this morning", "do I need an umbrella today", "what's the forecast",
    ],
    "play_music": [
        "play some music", "put on my jazz playlist", "play the latest song by adele",
        "start playing rock music", "I want to listen to some songs", "play music please",
    ],
    "book_flight": [
        "book a flight to paris", "I need a plane ticket to tokyo", "find me flights to rome",
        "reserve a seat on a flight to berlin", "get me a flight home friday",
        "book plane tickets for two",
    ],
    "oos": [
        "what is the meaning of life", "how tall is mount everest", "tell me about dinosaurs",
        "who invented the light bulb", "what's the square root of nine hundred",
        "how do volcanoes form",
    ],
}  # fmt: skip
QUICK = TuneSettings(epochs=6, batch=8, lr=2e-4, head_lr=5e-3, min_steps=0)
BAD_TEXTS = [
    "",
    "   \t\n",
    "!!!???",
    "\U0001f44d\U0001f44d\U0001f525",  # emoji only
    "\x00\x01\x02 control \x7f",
    "\udcff\udcfe weather",  # lone surrogates, as surrogateescape decodes bad bytes
    "x" * 100_000,
    "play music " * 10_000,
    "\u4eca\u65e5\u306e\u5929\u6c17\u306f\u3069\u3046\u3067\u3059\u304b",  # Japanese
    "\u0645\u0627 \u0647\u0648 \u0627\u0644\u0637\u0642\u0633",  # Arabic
    "\u00bfqu\u00e9 tiempo hace hoy?",
    "a",
]


def tiny_data(examples: dict[str, list[str]] = EXAMPLES) -> TrainingData:
    pairs = sorted(((t, i) for i, texts in examples.items() for t in texts), key=lambda p: p[::-1])
    return TrainingData(examples=pairs, intents=sorted(examples))


@pytest.fixture(scope="module")
def classifier() -> AccurateClassifier:
    return train(tiny_data(), settings=QUICK)


def test_it_is_an_intent_classifier_with_the_out_of_scope_class_among_its_intents(
    classifier: AccurateClassifier,
) -> None:
    typed: IntentClassifier = classifier
    assert classifier.intents == ["book_flight", "oos", "play_music", "weather"]
    result = typed.classify("will it rain tomorrow")
    assert result.name == "weather" and not result.out_of_scope
    assert result.ranking[0] == (result.name, result.confidence)
    assert sorted(n for n, _ in result.ranking) == ["book_flight", "play_music", "weather"]
    probs = [p for _, p in result.ranking]
    assert probs == sorted(probs, reverse=True) and len(probs) <= RANKING_SIZE


def test_training_examples_and_close_paraphrases_get_their_intent(
    classifier: AccurateClassifier,
) -> None:
    cases = [(t, i) for i, texts in EXAMPLES.items() if i != "oos" for t in texts] + [
        ("is it going to rain later", "weather"),
        ("play me a song", "play_music"),
        ("I want to fly to madrid", "book_flight"),
    ]
    wrong = [(t, want, classifier.classify(t).name) for t, want in cases]
    assert [w for w in wrong if w[1] != w[2]] == []


def test_a_message_of_the_out_of_scope_class_is_out_of_scope_whatever_the_threshold(
    classifier: AccurateClassifier,
) -> None:
    before = classifier.threshold
    try:
        classifier.threshold = 0.0
        results = [classifier.classify(text) for text in EXAMPLES["oos"]]
    finally:
        classifier.threshold = before
    for text, result in zip(EXAMPLES["oos"], results, strict=True):
        assert result.out_of_scope and result.name is None, (text, result)
        assert result.ranking and all(name != "oos" for name, _ in result.ranking)


def test_a_top_probability_under_the_threshold_is_out_of_scope(
    classifier: AccurateClassifier,
) -> None:
    text = "book a flight to paris"
    confidence, before = classifier.classify(text).confidence, classifier.threshold
    try:
        classifier.threshold = min(1.0, confidence + 1e-6)
        under = classifier.classify(text)
        classifier.threshold = confidence
        at = classifier.classify(text)
    finally:
        classifier.threshold = before
    assert under.out_of_scope and under.name is None and under.confidence == confidence
    assert under.ranking[0][0] == "book_flight"  # the alternatives are still given
    assert not at.out_of_scope and at.name == "book_flight"


def test_judged_per_provider_the_confidence_is_the_providers_sum(
    classifier: AccurateClassifier,
) -> None:
    travel = {"book_flight": "travel", "weather": "travel", "play_music": "media"}
    text = "will it rain tomorrow"
    alone = classifier.classify(text)
    classifier.groups = Groups(classifier.intents, travel.get)
    try:
        judged = classifier.classify(text)
        outside = classifier.classify(EXAMPLES["oos"][0])
    finally:
        classifier.groups = None
    ranked = dict(alone.ranking)
    assert judged.name == "weather" and not judged.out_of_scope
    assert judged.confidence == pytest.approx(ranked["weather"] + ranked["book_flight"])
    assert outside.out_of_scope and outside.name is None  # the oos class still outweighs


def test_a_texts_scores_are_the_same_alone_and_among_others(
    classifier: AccurateClassifier,
) -> None:
    texts = ["play some music", "will it rain tomorrow and the day after that as well", "hi"]
    many = classifier.probabilities_many(texts)
    assert many.shape == (3, len(classifier.intents)) and many.dtype == np.float64
    np.testing.assert_allclose(many.sum(axis=1), 1.0, atol=1e-9)
    for text, row in zip(texts, many, strict=True):
        np.testing.assert_allclose(row, classifier.probabilities_many([text])[0], atol=1e-12)
        assert classifier.classify(text).confidence == pytest.approx(
            max(row[i] for i, n in enumerate(classifier.intents) if n != "oos"), abs=1e-12
        )


@pytest.mark.parametrize("text", BAD_TEXTS, ids=range(len(BAD_TEXTS)))
def test_any_text_gets_a_result(classifier: AccurateClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert 0.0 <= result.confidence <= 1.0
    assert result.out_of_scope == (result.name is None)
    if not any(c.isalnum() for c in text):
        assert result.out_of_scope and result.confidence == 0.0
    row = classifier.probabilities_many([text])[0]
    assert row.shape == (len(classifier.intents),) and np.isfinite(row).all()


def test_texts_without_words_are_out_of_scope_in_batches_too(
    classifier: AccurateClassifier,
) -> None:
    rows = classifier.probabilities_many(["", "\U0001f600", "play some music"])
    oos = classifier.intents.index("oos")
    assert rows[0, oos] == rows[1, oos] == 1.0
    assert classifier.intents[int(rows[2].argmax())] == "play_music"


def test_a_saved_model_loads_with_the_same_readings(
    classifier: AccurateClassifier, tmp_path: Path
) -> None:
    path, key = tmp_path / "model.zip", cache_key(tiny_data())
    classifier.save(path, key)
    loaded = AccurateClassifier.load(path, key, threshold=0.7)
    assert loaded.intents == classifier.intents and loaded.threshold == 0.7
    texts = [t for texts in EXAMPLES.values() for t in texts]
    np.testing.assert_allclose(
        loaded.probabilities_many(texts), classifier.probabilities_many(texts), atol=1e-9
    )
    assert AccurateClassifier.load(path, key).threshold == DEFAULT_THRESHOLD
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_file_that_does_not_fit_is_refused(
    classifier: AccurateClassifier, tmp_path: Path
) -> None:
    path, key = tmp_path / "model.zip", cache_key(tiny_data())
    classifier.save(path, key)
    with pytest.raises(ValueError, match="another model format or training data"):
        AccurateClassifier.load(path, "another key")
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"\x00\xffnot a zip file" * 100)
    with pytest.raises(ValueError, match="not a model file"):
        AccurateClassifier.load(garbage, key)
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read("meta.json"))
    for name, members in {
        "no-model.zip": {"meta.json": json.dumps(meta).encode()},
        "bad-model.zip": {"meta.json": json.dumps(meta).encode(), "model.onnx": b"\x08\x07"},
        "fewer-intents.zip": {
            "meta.json": json.dumps({**meta, "intents": meta["intents"][:2]}).encode(),
            "model.onnx": zipfile.ZipFile(path).read("model.onnx"),
        },
    }.items():
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            for member, blob in members.items():
                archive.writestr(member, blob)
        with pytest.raises(ValueError):
            AccurateClassifier.load(tmp_path / name, key)


def test_the_cache_key_follows_the_training_data() -> None:
    data = tiny_data()
    assert cache_key(data) == cache_key(tiny_data())
    fewer = tiny_data({**EXAMPLES, "weather": EXAMPLES["weather"][:-1]})
    assert cache_key(fewer) != cache_key(data)


def test_training_reports_its_progress_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []
    small = {name: texts[:2] for name, texts in EXAMPLES.items()}
    train(tiny_data(small), settings=TuneSettings(epochs=2, batch=4, min_steps=0),
          progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    totals = {total for _, total in calls}
    assert len(totals) == 1 and calls[-1][0] == calls[-1][1] == totals.pop()
    assert [done for done, _ in calls] == list(range(1, len(calls) + 1))
    assert len(calls) == 2 * 2 + 1  # two steps an epoch for 8 examples, then the export


def test_every_out_of_scope_name_is_one_class() -> None:
    data = TrainingData(
        examples=[("a", "greet"), ("b", "oos"), ("c", "out_of_scope"), ("d", "thanks")],
        intents=["greet", "oos", "out_of_scope", "thanks"],
    )
    intents, labels = classes(data)
    assert intents == ["greet", "oos", "thanks"] and labels == [0, 1, 1, 2]


def test_training_needs_two_intents() -> None:
    with pytest.raises(ValueError, match="two intents"):
        train(TrainingData(examples=[("hello", "greet")], intents=["greet"]), settings=QUICK)
