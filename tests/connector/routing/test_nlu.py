"""The default classifier tier: quality on the shipped data, fast path = sklearn, cache.

Speed is measured, not asserted, in benchmarks/nlu_payments.py.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import numpy as np
import pytest

from connector.interfaces import IntentClassifier
from connector.routing.nlu import RANKING_SIZE, TIERS, TierUnavailable, train_or_load
from connector.routing.nlu_data import TrainingData, load_training_data
from connector.routing.nlu_default import DefaultClassifier, Fitted, ModelArrays, fit
from connector.routing.nlu_static import packaged

PAYMENTS = Path(__file__).parents[3] / "bot_configs" / "nlu" / "payments.yml"

# Written for this test, not copied from (nor tuned against) the training file.
HELD_OUT = [
    ("hi, is anybody there", "greet"),
    ("hello, good morning to you", "greet"),
    ("alright, bye then", "goodbye"),
    ("see you, have a great day", "goodbye"),
    ("thank you very much", "thanks"),
    ("great, cheers for that", "thanks"),
    ("what's the balance of my account", "check_balance"),
    ("how much money have I got left", "check_balance"),
    ("has the refund for my cancelled order come through yet", "refund_status"),
    ("the shop refunded me but the money isn't showing", "refund_status"),
    ("I've forgotten my password, can you help", "reset_password"),
    ("the password reset email never came", "reset_password"),
    ("how do I activate the card I just got", "activate_card"),
    ("my card came today and needs activating", "activate_card"),
    ("I've moved house, how do I change my address", "update_address"),
    ("please update the address you have for me", "update_address"),
    ("is there a fee for sending money overseas", "fees"),
    ("how much do you charge per transfer", "fees"),
    ("what's the daily limit for sending money", "transfer_limits"),
    ("can you raise my transfer limit", "transfer_limits"),
    ("do you accept google pay", "payment_methods"),
    ("how do I link another bank account", "payment_methods"),
    ("can I get last month's statement", "account_statement"),
    ("I need a pdf statement of my transactions", "account_statement"),
    ("I don't recognise a charge on my statement", "dispute_charge"),
    ("I want to dispute a payment, the goods never arrived", "dispute_charge"),
    ("is there any update on my dispute", "dispute_status"),
    ("what's the status of the chargeback I filed", "dispute_status"),
    ("I've been charged twice for the same purchase", "duplicate_charge"),
    ("there's a double charge from the same shop", "duplicate_charge"),
    ("someone has been using my card without my permission", "report_fraud"),
    ("I think my account has been hacked", "report_fraud"),
    ("I've lost my debit card", "lost_or_stolen_card"),
    ("my wallet was stolen with my card in it", "lost_or_stolen_card"),
    ("I'd like to speak to a human please", "talk_to_human"),
    ("can you put me through to a real agent", "talk_to_human"),
]
NONSENSE = ["what's the capital of peru", "asdf qwerty", "zzzz", "lorem ipsum dolor sit amet"]
OFF_TOPIC = [
    "what's the weather in london",
    "who wrote war and peace",
    "order me a large pepperoni pizza",
    "what's the best way to learn guitar",
    "how many legs does a spider have",
    "turn off the living room lights",
    "when does the next train to boston leave",
    "what movies are on tonight",
    "is it going to snow this weekend",
    "recommend a good book",
]
# Edge cases for the fast path: empty, punctuation, unicode, repeats, typos, unknown words.
TEXTS = [
    "",
    "   ",
    "!!!",
    "?",
    "a",
    "I",
    "Hello",
    "caf\u00e9 cr\u00e8me, s\u2019il vous pla\u00eet",
    "\uff26\uff35\uff2c\uff2c balance",  # fullwidth FULL
    "I\u2019ve lost my card",
    "refund refund refund refund",
    "whats my blance plz",
    "tab\tseparated\nand newline",
    "x" * 300,
    "can you tell me please how much money is currently in my checking account",
    *(text for text, _ in HELD_OUT[:10]),
    *NONSENSE,
]


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return load_training_data([PAYMENTS])


@pytest.fixture(scope="module")
def pipeline(data: TrainingData) -> Fitted:
    return fit(data)


@pytest.fixture(scope="module")
def classifier(pipeline: Fitted) -> DefaultClassifier:
    return DefaultClassifier(ModelArrays.from_fitted(pipeline))


def predict_proba(pipeline: Fitted, texts: list[str]) -> np.ndarray:
    """What scikit-learn itself computes for these texts: the reference of the fast path."""
    return pipeline.model.predict_proba(pipeline.features(texts, packaged()))


def test_is_an_intent_classifier(classifier: DefaultClassifier) -> None:
    typed: IntentClassifier = classifier
    result = typed.classify("where is my refund")
    assert result.name == "refund_status" and not result.out_of_scope
    assert len(result.ranking) == RANKING_SIZE
    assert result.ranking[0] == (result.name, result.confidence)
    probs = [p for _, p in result.ranking]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-9


def test_held_out_paraphrases(classifier: DefaultClassifier) -> None:
    wrong = [
        (text, want, classifier.classify(text).name)
        for text, want in HELD_OUT
        if classifier.classify(text).name != want
    ]
    assert len(wrong) <= 0.15 * len(HELD_OUT), wrong


@pytest.mark.parametrize("text", NONSENSE)
def test_nonsense_is_out_of_scope(classifier: DefaultClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.out_of_scope and result.name is None, result
    assert result.ranking  # alternatives are still given, for logs and replay


def test_off_topic_is_mostly_out_of_scope(classifier: DefaultClassifier) -> None:
    kept = [(t, classifier.classify(t).name) for t in OFF_TOPIC if classifier.classify(t).name]
    assert len(kept) <= 0.2 * len(OFF_TOPIC), kept


def test_fast_path_equals_sklearn(classifier: DefaultClassifier, pipeline: Fitted) -> None:
    expected = predict_proba(pipeline, TEXTS)
    assert list(pipeline.model.classes_) == classifier.intents
    for _ in range(2):  # the second round reads the per-word n-gram cache
        for text, want in zip(TEXTS, expected, strict=True):
            got = classifier.probabilities(text)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=text)
            result = classifier.classify(text)
            top = int(np.argmax(want))
            assert result.ranking[0][0] == pipeline.model.classes_[top], text
            assert result.confidence == pytest.approx(want[top], abs=1e-6)


def test_ranking_is_sklearns_top_five_in_order(
    classifier: DefaultClassifier, pipeline: Fitted
) -> None:
    expected = predict_proba(pipeline, TEXTS)
    for text, want in zip(TEXTS, expected, strict=True):
        top = np.argsort(-want, kind="stable")[:RANKING_SIZE]
        ranking = classifier.classify(text).ranking
        assert [name for name, _ in ranking] == [pipeline.model.classes_[i] for i in top], text
        np.testing.assert_allclose([p for _, p in ranking], want[top], rtol=0, atol=1e-5)


def test_long_messages_of_repeated_ngrams_equal_sklearn(pipeline: Fitted) -> None:
    fresh = DefaultClassifier(ModelArrays.from_fitted(pipeline))
    texts = ["refund", "refund " * 500, "x" * 4000, "my card was stolen " * 60, "a", "I"]
    expected = predict_proba(pipeline, texts)
    for text, want in zip(texts, expected, strict=True):
        got = fresh.probabilities(text)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=text[:30])


def test_many_intents_fast_path_equals_sklearn() -> None:
    names = [f"topic{i:02d}" for i in range(40)]  # over the count finished in Python floats
    examples = [(f"{how} {name} {thing}", name) for name in names
                for how, thing in [("tell me about", "please"), ("what is", "today")]]  # fmt: skip
    pipeline = fit(TrainingData(examples=examples, intents=names))
    classifier = DefaultClassifier(ModelArrays.from_fitted(pipeline))
    texts = ["", "topic07", "tell me about topic31 today", "topic1 topic2 topic3", "caf\u00e9"]
    for text, want in zip(texts, predict_proba(pipeline, texts), strict=True):
        np.testing.assert_allclose(classifier.probabilities(text), want, rtol=0, atol=1e-5)
        top = np.argsort(-want, kind="stable")[:RANKING_SIZE]
        assert [n for n, _ in classifier.classify(text).ranking] == [names[i] for i in top], text


def test_two_intents_fast_path_equals_sklearn() -> None:
    data = TrainingData(
        examples=[("yes please", "affirm"), ("sure", "affirm"), ("no", "deny"), ("nope", "deny")],
        intents=["affirm", "deny"],
    )
    pipeline = fit(data)
    classifier = DefaultClassifier(ModelArrays.from_fitted(pipeline), threshold=0.0)
    for text in ["yes", "no", "", "nope nope", "whatever"]:
        want = predict_proba(pipeline, [text])[0]
        np.testing.assert_allclose(classifier.probabilities(text), want, rtol=0, atol=1e-5)
        assert len(classifier.classify(text).ranking) == 2


def test_threshold(pipeline: Fitted) -> None:
    arrays = ModelArrays.from_fitted(pipeline)
    assert DefaultClassifier(arrays, threshold=0.0).classify("asdf").name is not None
    assert DefaultClassifier(arrays, threshold=1.0).classify("hello").out_of_scope
    with pytest.raises(ValueError, match="threshold"):
        DefaultClassifier(arrays, threshold=1.5)


def _modules_called(run: Callable[[], object]) -> set[str]:
    """Every module (Python or C) whose functions ``run`` calls, traced with sys.setprofile."""
    called: set[str] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            called.add(str(frame.f_globals.get("__name__", "")))
        elif event == "c_call":
            called.add(str(getattr(arg, "__module__", None) or ""))

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return called


def test_classify_never_goes_through_sklearn(tmp_path: Path) -> None:
    """sklearn's per-call validation alone costs ~1 ms, over the whole per-message budget;
    classifying must run on the plain arrays. (Timings: benchmarks/nlu_payments.py.)"""
    files, cache = copy_payments(tmp_path), tmp_path / "cache"
    train_or_load(files, cache)
    loaded, trained = train_or_load(files, cache)  # as a restart gets it: from the cache
    assert not trained
    called = _modules_called(lambda: [loaded.classify(text) for text in TEXTS])
    assert "connector.routing.nlu" in called  # the tracing sees the classifier's own calls
    assert not {m for m in called if m.split(".")[0] == "sklearn"}


# --------------------------------------------------------------------------- cache


def copy_payments(tmp_path: Path, extra: str = "") -> list[Path]:
    path = tmp_path / "nlu" / "payments.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PAYMENTS.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return [path]


def same_results(a: DefaultClassifier, b: DefaultClassifier) -> None:
    for text in TEXTS:
        assert a.classify(text) == b.classify(text)


def test_cache_trains_then_loads(tmp_path: Path) -> None:
    files, cache = copy_payments(tmp_path), tmp_path / "cache"
    first, trained = train_or_load(files, cache)
    assert trained
    [written] = cache.glob("nlu-*.npz")
    assert len(written.stem) == len("nlu-") + 16
    assert not list(cache.glob("*.tmp"))
    second, trained = train_or_load(files, cache, threshold=0.9)
    assert not trained
    assert second.threshold == 0.9 and second.intents == first.intents
    second.threshold = first.threshold
    same_results(first, second)


def test_changed_data_retrains(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _, trained = train_or_load(copy_payments(tmp_path), cache)
    [old] = cache.glob("nlu-*.npz")
    extra = "\n- intent: thanks\n  examples: |\n    - ta very much\n"
    changed, trained = train_or_load(copy_payments(tmp_path, extra), cache)
    assert trained
    [new] = cache.glob("nlu-*.npz")  # the stale file is gone
    assert new != old
    assert train_or_load(copy_payments(tmp_path, extra), cache)[1] is False
    assert changed.classify("ta very much").name == "thanks"


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_cache_is_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    files, cache = copy_payments(tmp_path), tmp_path / "cache"
    good, _ = train_or_load(files, cache)
    [path] = cache.glob("nlu-*.npz")
    blob = path.read_bytes()
    broken = {"garbage": b"not a model" * 50, "truncate": blob[: len(blob) // 2], "empty": b""}
    path.write_bytes(broken[damage])
    with caplog.at_level(logging.WARNING, logger="midtier.nlu"):
        again, trained = train_or_load(files, cache)
    assert trained
    assert any("unreadable NLU cache" in r.getMessage() for r in caplog.records)
    same_results(good, again)
    assert train_or_load(files, cache)[1] is False


def test_cache_for_other_data_under_same_name_is_not_used(tmp_path: Path) -> None:
    files, cache = copy_payments(tmp_path), tmp_path / "cache"
    train_or_load(files, cache)
    [path] = cache.glob("nlu-*.npz")
    other = tmp_path / "other"
    train_or_load(copy_payments(other, "\n- intent: greet\n  examples: |\n    - howdy\n"), other)
    [foreign] = other.glob("nlu-*.npz")
    path.write_bytes(foreign.read_bytes())
    assert train_or_load(files, cache)[1] is True


def test_unwritable_cache_still_classifies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="midtier.nlu"):
        classifier, trained = train_or_load(copy_payments(tmp_path), not_a_dir)
    assert trained and classifier.classify("hello").name == "greet"
    assert any("cannot write NLU cache" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- tiers


def test_the_default_tier_is_what_train_or_load_gives(tmp_path: Path) -> None:
    classifier, trained = train_or_load(copy_payments(tmp_path), tmp_path / "cache", tier="default")
    assert trained and isinstance(classifier, DefaultClassifier)


def test_an_unknown_tier_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(TierUnavailable, match=r"unknown classifier tier 'fast'.*'default'"):
        train_or_load(copy_payments(tmp_path), tmp_path / "cache", tier="fast")


def test_a_tier_whose_module_cannot_be_imported_names_its_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TIERS, "accurate", "connector.routing.no_such_tier_module")
    with pytest.raises(TierUnavailable, match=r"pip install 'midtier\[embeddings\]'"):
        train_or_load(copy_payments(tmp_path), tmp_path / "cache", tier="accurate")


OTHER_TIER = """
from __future__ import annotations

from typing import TYPE_CHECKING

from connector.routing.nlu_default import DefaultClassifier, cache_key as default_key, fit
from connector.routing.nlu_default import ModelArrays

if TYPE_CHECKING:
    from somewhere_else import Settings


class OtherClassifier(DefaultClassifier):
    pass


def train(
    data, *, threshold=None, progress=None, settings: Settings | None = None
) -> OtherClassifier:
    arrays = ModelArrays.from_fitted(fit(data, progress=progress))
    return OtherClassifier(arrays, threshold=threshold)


def cache_key(data):
    return default_key(data)[::-1]
"""


def test_a_tier_module_of_the_shared_shape_is_trained_then_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "other_tier.py").write_text(OTHER_TIER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(TIERS, "other", "other_tier")
    files, cache = copy_payments(tmp_path), tmp_path / "cache"
    first, trained = train_or_load(files, cache, tier="other")
    second, again = train_or_load(files, cache, tier="other", threshold=0.5)
    assert (trained, again) == (True, False)
    assert type(first).__name__ == type(second).__name__ == "OtherClassifier"
    assert second.threshold == 0.5
