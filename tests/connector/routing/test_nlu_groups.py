"""Confidence judged per provider (``nlu: {threshold_on: provider}``): a message whose
probability splits over one provider's close intents is that provider's, not out of scope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from connector.cli import main
from connector.config import Route, load_config
from connector.errors import ConfigErrors
from connector.routing import nlu_default
from connector.routing.nlu import FEW_INTENTS, classifier_for, intent_result
from connector.routing.nlu_data import TrainingData
from connector.routing.nlu_groups import Groups, by_route
from connector.routing.nlu_measure import Readings, figures
from tests.connector.routing.test_tier_config import config_with_nlu

ROUTES = {
    "cards": Route(intents=["card_*"]),
    "refunds": Route(intents=["refund", "card_declined"]),  # card_declined: cards' (first)
}
INTENTS = ["card_declined", "card_lost", "oos", "refund", "weather"]


def groups() -> Groups:
    return Groups(INTENTS, by_route(ROUTES))


def test_intents_are_grouped_by_the_first_route_serving_them() -> None:
    provider = by_route(ROUTES)
    assert [provider(i) for i in INTENTS] == ["cards", "cards", None, "refunds", None]
    found = groups()
    # cards, refunds, and "weather" (served by no route) alone; the out-of-scope class in none.
    assert found.of == [0, 0, -1, 1, 2] and found.size == 3 and found.oos == [2]


def test_a_split_between_one_providers_intents_is_judged_as_their_sum() -> None:
    probs = [0.3, 0.25, 0.05, 0.4, 0.0]  # refund is the top intent; cards has 0.55
    for given in (probs, np.array(probs)):
        assert groups().judge(given) == (0, pytest.approx(0.55), False)
    # Unnormalized (the softmax's exponentials) with their sum: the same reading.
    assert groups().judge([3.0, 2.5, 0.5, 4.0, 0.0], total=10.0) == (0, pytest.approx(0.55), False)


def test_the_out_of_scope_class_outweighing_the_best_provider_says_out_of_scope() -> None:
    best, mass, outweighed = groups().judge(np.array([0.2, 0.1, 0.45, 0.25, 0.0]))
    assert (INTENTS[best], outweighed) == ("card_declined", True)
    assert mass == pytest.approx(0.3)


def test_many_rows_are_judged_as_each_one_alone() -> None:
    rows = np.random.default_rng(7).dirichlet(np.ones(len(INTENTS)), size=50)
    best, mass, outweighed = groups().judge_many(rows)
    for i, row in enumerate(rows):
        assert (int(best[i]), float(mass[i]), bool(outweighed[i])) == pytest.approx(
            groups().judge(row)
        )


@pytest.mark.parametrize("many", [False, True], ids=["floats", "numpy"])
def test_an_intent_result_per_provider_is_in_scope_where_per_intent_it_is_not(many: bool) -> None:
    intents, probs = INTENTS, [0.3, 0.25, 0.05, 0.4, 0.0]
    if many:  # past FEW_INTENTS the tiers hand numpy rows over
        intents = [*INTENTS, *(f"spare_{i}" for i in range(FEW_INTENTS))]
        probs = [*probs, *[0.0] * FEW_INTENTS]
    grouped = Groups(intents, by_route(ROUTES))

    def given() -> list[float] | np.ndarray:
        return np.array(probs) if many else list(probs)

    per_intent = intent_result(given(), intents, 2, 0.5)
    assert (per_intent.name, per_intent.out_of_scope) == (None, True)
    per_provider = intent_result(given(), intents, 2, 0.5, 1.0, grouped)
    assert (per_provider.name, per_provider.out_of_scope) == ("card_declined", False)
    assert per_provider.confidence == pytest.approx(0.55)
    # The ranking stays the intents', the out-of-scope class left out.
    ranked = [name for name, _ in per_provider.ranking[:3]]
    assert ranked == ["refund", "card_declined", "card_lost"]


def _cards_model() -> nlu_default.DefaultClassifier:
    cards = ["my card", "card problem", "an issue with my card", "something wrong with my card"]
    examples = [
        *((f"{t} was declined", "card_declined") for t in cards),
        *((f"{t} got declined at the shop", "card_declined") for t in cards),
        *((f"{t} is lost", "card_lost") for t in cards),
        *((f"I lost {t}", "card_lost") for t in cards),
        *((t, "refund") for t in ["refund please", "where is my refund", "money back", "refund"]),
        *((t, "weather") for t in ["is it raining", "weather today", "will it be sunny", "cold?"]),
    ]
    data = TrainingData(sorted(examples), sorted({i for _, i in examples}))
    return nlu_default.train(data, threshold=0.75)


def test_a_trained_model_keeps_a_message_between_two_card_intents_for_cards() -> None:
    model = _cards_model()
    text = "an issue with my card"  # split between lost and declined
    alone = model.classify(text)
    assert alone.out_of_scope and alone.confidence < 0.75
    model.groups = Groups(model.intents, by_route(ROUTES))
    judged = model.classify(text)
    assert not judged.out_of_scope and judged.name in {"card_declined", "card_lost"}
    assert judged.confidence >= 0.75 > alone.confidence
    # What is not a card's stays with its own intent, judged as before.
    assert model.classify("weather today").name == "weather"


def test_readings_per_provider_count_a_message_routed_to_its_provider() -> None:
    probs = np.array([[0.3, 0.25, 0.05, 0.4, 0.0], [0.05, 0.05, 0.8, 0.1, 0.0]])
    gold = ["card_lost", "oos"]
    domains = {"card_declined": "cards", "card_lost": "cards", "refund": "refunds"}
    per_intent = figures(Readings.of(probs, INTENTS, gold), 0.5, domains)
    per_provider = figures(Readings.of(probs, INTENTS, gold, groups()), 0.5, domains)
    assert (per_intent["routing_accuracy"], per_provider["routing_accuracy"]) == (0.0, 1.0)
    assert per_intent["oos_recall"] == per_provider["oos_recall"] == 1.0
    assert per_provider["in_scope_accuracy"] == 0.0  # card_declined read, card_lost said


def test_routing_yaml_turns_it_on_for_the_deployments_classifier(tmp_path: Path) -> None:
    config = load_config(config_with_nlu(tmp_path, "{threshold_on: provider}"))
    classifier, _ = classifier_for(config.routing, config.nlu_files, tmp_path / "cache")
    assert classifier.groups is not None
    provider = by_route(config.routing.routes)
    for intent, group in zip(classifier.intents, classifier.groups.of, strict=True):
        mates = {i for i, g in zip(classifier.intents, classifier.groups.of, strict=True)
                 if g == group}  # fmt: skip
        assert {provider(i) for i in mates} == {provider(intent)}
    config.routing.nlu.threshold_on = "intent"  # a reload back: judged per intent again
    again, trained = classifier_for(config.routing, config.nlu_files, tmp_path / "cache")
    assert (again.groups, trained) == (None, False)


def test_an_unknown_threshold_on_is_refused_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_config(config_with_nlu(tmp_path, "{threshold_on: domain}"))
    assert [str(e).split(":")[1].strip() for e in info.value.errors] == ["nlu.threshold_on"]


def test_eval_per_provider_needs_a_data_set_with_domains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("text,intent\nhello,greet\n", encoding="utf-8")
    args = ["nlu", "eval", "--train", str(csv), "--test", str(csv), "--threshold-on", "provider"]
    assert main(args) == 2
    assert "--threshold-on provider needs --dataset clinc150" in capsys.readouterr().err


def test_confidence_is_how_far_a_providers_sum_rose_above_its_baseline() -> None:
    baseline = [0.3, 0.2, 0.1, 0.3, 0.1]  # cards 0.5, refunds 0.3, weather 0.1 with no evidence
    grouped = Groups(INTENTS, by_route(ROUTES), baseline)
    assert grouped.base == pytest.approx([0.5, 0.3, 0.1])
    assert grouped.judge([0.5, 0.25, 0.05, 0.2, 0.0]) == (0, pytest.approx(0.5), False)
    # No more than it gets from nothing: no confidence at all, though the largest sum.
    assert grouped.judge(np.array([0.3, 0.15, 0.1, 0.3, 0.15]))[1:] == (0.0, False)
    _, lifted, _ = grouped.judge_many(np.array([[0.5, 0.25, 0.05, 0.2, 0.0]]))
    assert lifted.tolist() == pytest.approx([0.5])


def test_in_the_shipped_deployment_a_message_of_no_evidence_stays_out_of_scope(
    tmp_path: Path,
) -> None:
    # faq serves 12 of the 18 intents: their sum is 0.6 for an empty message.
    config = load_config(config_with_nlu(tmp_path, "{threshold_on: provider}"))
    classifier, _ = classifier_for(config.routing, config.nlu_files, tmp_path / "cache")
    for text in ("", "tell me a joke", "\U0001f44d\U0001f525"):
        assert classifier.classify(text).out_of_scope, text
    fees = classifier.classify("what fees do you charge")
    assert (fees.name, fees.out_of_scope) == ("fees", False)
