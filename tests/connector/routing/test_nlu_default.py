"""The default tier's shared shape: the out-of-scope class, bad input, saving and loading."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from connector.interfaces import IntentResult
from connector.routing.nlu import RANKING_SIZE, TierClassifier
from connector.routing.nlu_data import TrainingData, load_training_data
from connector.routing.nlu_default import DefaultClassifier, cache_key, train

PAYMENTS = Path(__file__).parents[3] / "bot_configs" / "nlu" / "payments.yml"
# Made up for these tests: what a payments deployment is not for.
OUT_OF_SCOPE = [
    "what's the weather like tomorrow",
    "tell me a joke",
    "who won the football game last night",
    "how tall is mount everest",
    "play some jazz music",
    "what's a good recipe for lasagna",
    "translate hello into spanish",
    "set an alarm for seven am",
    "how many calories are in an apple",
    "book me a table for two tonight",
    "what's the capital of australia",
    "recommend a movie to watch",
]
BAD_INPUT = [
    "",
    " \t\n ",
    "\x00\x01\x02\x7f" * 50,
    "\udcff\udcfe not utf-8 \udc80",  # bytes that were not UTF-8, decoded with surrogateescape
    "\U0001f600\U0001f680\U0001f4b8",
    "\u8bf7\u95ee\u6211\u7684\u8d26\u6237\u4f59\u989d\u662f\u591a\u5c11",
    "\u0645\u0627 \u0647\u0648 \u0631\u0635\u064a\u062f\u064a",
    "\u0441\u043a\u043e\u043b\u044c\u043a\u043e \u0434\u0435\u043d\u0435\u0433",
    "\u202e\u200b\ufeff\ufffd",
    "refund " * 15_000,  # about 100 KB
    "x" * 100_000,
]


@pytest.fixture(scope="module")
def data() -> TrainingData:
    payments = load_training_data([PAYMENTS])
    examples = sorted([*payments.examples, *((t, "oos") for t in OUT_OF_SCOPE)],
                      key=lambda p: (p[1], p[0]))  # fmt: skip
    return TrainingData(examples=examples, intents=sorted({*payments.intents, "oos"}))


@pytest.fixture(scope="module")
def classifier(data: TrainingData) -> DefaultClassifier:
    return train(data)


def test_the_out_of_scope_class_is_one_of_the_intents(classifier: DefaultClassifier) -> None:
    assert "oos" in classifier.intents
    assert classifier.probabilities_many(["hello"]).shape == (1, len(classifier.intents))


def test_a_message_the_out_of_scope_class_wins_is_out_of_scope_at_any_threshold(
    classifier: DefaultClassifier,
) -> None:
    text = "tell me a joke please"
    probs = classifier.probabilities(text)
    assert classifier.intents[int(np.argmax(probs))] == "oos"
    classifier.threshold = 0.0
    try:
        result = classifier.classify(text)
    finally:
        classifier.threshold = DefaultClassifier(classifier.arrays).threshold
    assert result.out_of_scope and result.name is None
    top_in_scope = max(p for i, p in zip(classifier.intents, probs, strict=True) if i != "oos")
    assert result.confidence == pytest.approx(top_in_scope)


def test_the_ranking_lists_in_scope_intents_only(classifier: DefaultClassifier) -> None:
    for text in ["tell me a joke", "where is my refund", "hello"]:
        ranking = classifier.classify(text).ranking
        assert len(ranking) == RANKING_SIZE and "oos" not in [name for name, _ in ranking]


def test_in_scope_messages_are_still_read(classifier: DefaultClassifier) -> None:
    result = classifier.classify("has my refund come through yet")
    assert (result.name, result.out_of_scope) == ("refund_status", False)


def test_a_threshold_over_the_top_probability_makes_a_message_out_of_scope(
    data: TrainingData,
) -> None:
    strict = train(data, threshold=1.0)
    assert strict.threshold == 1.0
    assert strict.classify("where is my refund").out_of_scope
    with pytest.raises(ValueError, match="threshold"):
        DefaultClassifier(strict.arrays, threshold=-0.1)


@pytest.mark.parametrize("text", BAD_INPUT, ids=range(len(BAD_INPUT)))
def test_bad_input_gets_a_result(classifier: DefaultClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert isinstance(result, IntentResult)
    assert 0.0 <= result.confidence <= 1.0 and result.ranking
    assert np.isclose(classifier.probabilities(text).sum(), 1.0)


@pytest.mark.parametrize("text", [BAD_INPUT[i] for i in (0, 1, 2, 3, 4, 8)])
def test_input_without_words_is_out_of_scope(classifier: DefaultClassifier, text: str) -> None:
    assert classifier.classify(text).out_of_scope


def test_progress_counts_up_to_its_total(data: TrainingData) -> None:
    seen: list[tuple[int, int]] = []
    train(data, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# --------------------------------------------------------------------------- save and load


def test_a_saved_model_loads_with_the_same_results(
    classifier: DefaultClassifier, data: TrainingData, tmp_path: Path
) -> None:
    path, key = tmp_path / "model.npz", cache_key(data)
    classifier.save(path, key)
    loaded: TierClassifier = DefaultClassifier.load(path, key)
    assert loaded.intents == classifier.intents and loaded.threshold == classifier.threshold
    texts = ["where is my refund", "tell me a joke", *BAD_INPUT[:5]]
    np.testing.assert_array_equal(
        loaded.probabilities_many(texts), classifier.probabilities_many(texts)
    )
    assert [loaded.classify(t) for t in texts] == [classifier.classify(t) for t in texts]
    assert DefaultClassifier.load(path, key, threshold=0.8).threshold == 0.8


def test_a_file_saved_for_other_data_does_not_fit(
    classifier: DefaultClassifier, data: TrainingData, tmp_path: Path
) -> None:
    path = tmp_path / "model.npz"
    classifier.save(path, cache_key(data))
    other = TrainingData(examples=data.examples[1:], intents=data.intents)
    with pytest.raises(ValueError, match="another model format or training data"):
        DefaultClassifier.load(path, cache_key(other))


def test_a_file_whose_arrays_do_not_match_does_not_fit(
    classifier: DefaultClassifier, tmp_path: Path
) -> None:
    a = classifier.arrays
    cut = dataclasses.replace(a, word_terms=a.word_terms[1:])
    broken = object.__new__(DefaultClassifier)  # only its arrays: what save writes
    broken.arrays = cut
    broken.save(tmp_path / "model.npz", "k")
    with pytest.raises(ValueError, match="shapes"):
        DefaultClassifier.load(tmp_path / "model.npz", "k")


def test_a_file_that_is_not_an_archive_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(b"\x93NUMPY not really")
    with pytest.raises(ValueError):
        DefaultClassifier.load(path, "k")
