"""``midtier nlu eval`` on small made-up files: the figures it reports and its clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.cli import main
from connector.routing import nlu
from connector.routing.nlu_eval import KEYS, mean_row

INTENTS = {
    "greet": ["hello", "hi there", "good morning", "hey", "hello there friend", "hi, how are you",
              "good evening", "hey hey", "morning!", "greetings"],
    "goodbye": ["bye", "goodbye", "see you later", "bye bye", "see you soon", "farewell",
                "talk to you later", "catch you later", "good night", "have a nice day, bye"],
    "refund": ["where is my refund", "I want a refund", "refund my order", "has my refund arrived",
               "when will I get my money back", "refund please", "my refund is late",
               "the refund never came", "how long do refunds take", "can I get my money back"],
}  # fmt: skip
OUT_OF_SCOPE = ["what's the weather", "tell me a joke", "play some music", "who is the president",
                "how tall is everest", "recommend a movie", "what time is it in tokyo",
                "translate cat to french"]  # fmt: skip


def yaml_file(path: Path, intents: dict[str, list[str]]) -> Path:
    items = "".join(
        f"- intent: {name}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
        for name, texts in intents.items()
    )
    path.write_text(f'version: "3.1"\nnlu:\n{items}', encoding="utf-8")
    return path


def csv_file(path: Path, intents: dict[str, list[str]]) -> Path:
    rows = "".join(f'"{t}",{name}\n' for name, texts in intents.items() for t in texts)
    path.write_text("text,intent\n" + rows, encoding="utf-8")
    return path


def split(with_oos: bool) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    every = {**INTENTS, **({"oos": OUT_OF_SCOPE} if with_oos else {})}
    train = {name: texts[::2] for name, texts in every.items()}
    test = {name: texts[1::2] for name, texts in every.items()}
    return train, test


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["nlu", "eval", *args, "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    row: dict[str, object] = json.loads(line)
    return row


@pytest.mark.parametrize("suffix", [".yml", ".csv"])
def test_without_an_out_of_scope_class_the_oos_figures_are_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    train, test = split(with_oos=False)
    make = yaml_file if suffix == ".yml" else csv_file
    row = run_json(capsys, "--train", str(make(tmp_path / f"train{suffix}", train)),
                   "--test", str(make(tmp_path / f"test{suffix}", test)))  # fmt: skip
    assert list(row)[: len(KEYS)] == list(KEYS)
    assert row["tier"] == "default"
    assert row["oos_recall"] is None and row["oos_precision"] is None
    assert row["routing_accuracy"] is None
    accuracy = row["in_scope_accuracy"]
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    for key in ("p50_ms", "p99_ms", "train_s", "startup_s"):
        value = row[key]
        assert isinstance(value, float) and value > 0.0, key
    assert row["test_examples"] == sum(len(t) for t in test.values())


def test_with_an_out_of_scope_class_recall_and_precision_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = split(with_oos=True)
    row = run_json(capsys, "--train", str(csv_file(tmp_path / "train.csv", train)),
                   "--test", str(yaml_file(tmp_path / "test.yml", test)),
                   "--val", str(yaml_file(tmp_path / "val.yml", test)))  # fmt: skip
    recall, precision = row["oos_recall"], row["oos_precision"]
    assert isinstance(recall, float) and 0.0 <= recall <= 1.0
    assert isinstance(precision, float) and 0.0 <= precision <= 1.0
    assert isinstance(row["threshold"], float)  # tuned on --val


def test_the_table_lists_the_tier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = split(with_oos=True)
    args = ["--train", str(yaml_file(tmp_path / "a.yml", train)),
            "--test", str(yaml_file(tmp_path / "b.yml", test))]  # fmt: skip
    assert main(["nlu", "eval", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| method | in-scope acc. | OOS recall |")
    assert "| midtier default (a.yml" in out and "Larson" not in out


def test_a_tier_that_cannot_be_imported_names_the_extra_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(nlu.TIERS, "accurate", "connector.routing.no_such_tier_module")
    train, test = split(with_oos=False)
    args = ["nlu", "eval", "--tier", "accurate",
            "--train", str(yaml_file(tmp_path / "a.yml", train)),
            "--test", str(yaml_file(tmp_path / "b.yml", test))]  # fmt: skip
    assert main(args) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error: ") and "pip install 'midtier[embeddings]'" in line
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_bad_training_file_is_one_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "train.csv"
    bad.write_text("text,intent\nhello,greet\nno intent here\n", encoding="utf-8")
    test = yaml_file(tmp_path / "test.yml", split(with_oos=False)[1])
    assert main(["nlu", "eval", "--train", str(bad), "--test", str(test)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "train.csv: line 3" in line


def test_train_without_test_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = yaml_file(tmp_path / "a.yml", split(with_oos=False)[0])
    assert main(["nlu", "eval", "--train", str(train)]) == 2
    assert "--train needs --test" in capsys.readouterr().err


def test_draws_are_averaged_figure_by_figure() -> None:
    draws = [
        {"tier": "default", "in_scope_accuracy": 0.8, "oos_recall": None, "threshold": 0.1,
         "dataset": "clinc150, 10 per intent, seed 0", "balanced": {"threshold": 0.2}},
        {"tier": "default", "in_scope_accuracy": 0.9, "oos_recall": None, "threshold": 0.3,
         "dataset": "clinc150, 10 per intent, seed 1", "balanced": {"threshold": 0.4}},
    ]  # fmt: skip
    row = mean_row(draws)
    assert row["in_scope_accuracy"] == pytest.approx(0.85) and row["oos_recall"] is None
    assert row["threshold"] == pytest.approx(0.2)
    assert row["balanced"]["threshold"] == pytest.approx(0.3)
    assert row["dataset"] == "clinc150, 10 per intent, mean of 2 draws"
    assert [d["in_scope_accuracy"] for d in row["draws"]] == [0.8, 0.9]
