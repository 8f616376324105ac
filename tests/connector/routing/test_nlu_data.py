"""Loading Rasa NLU YAML training data: annotations, example forms, and errors with file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigError, ConfigErrors
from connector.routing.nlu_data import TrainingData, load_training_data
from connector.routing.nlu_examples import strip_entities

GOOD = """\
version: "3.1"
nlu:
- intent: pay
  examples: |
    - pay [$45](amount) to [Bob](person)
    - send [two](count:2) payments
    - from [NYC]{"entity": "city", "role": "origin"} to [LA]{"entity": "city", "role": "to"}
    - move [ten dollars][{"entity": "amount"}, {"entity": "money", "value": "10"}] now
    - plain   text   with   spaces
- intent: faq/opening_hours
  metadata: {sentiment: neutral}
  examples:
  - text: when are you open?
    metadata: {source: web}
  - text: opening hours on [sunday](day)
- synonym: New York City
  examples: |
    - NYC
- regex: zipcode
  examples: |
    - \\d{5}
- lookup: city
  examples: |
    - Berlin
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "nlu"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(files: list[Path]) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        load_training_data(files)
    return info.value.errors


def test_strips_every_annotation_form_and_keeps_retrieval_intents(tmp_path: Path) -> None:
    data = load_training_data([write(tmp_path, "a.yml", GOOD)])
    assert data.intents == ["faq/opening_hours", "pay"]
    assert sorted(data.examples) == sorted(
        [
            ("pay $45 to Bob", "pay"),
            ("send two payments", "pay"),
            ("from NYC to LA", "pay"),
            ("move ten dollars now", "pay"),
            ("plain text with spaces", "pay"),
            ("when are you open?", "faq/opening_hours"),
            ("opening hours on sunday", "faq/opening_hours"),
        ]
    )


def test_strip_entities_leaves_plain_brackets_alone() -> None:
    assert strip_entities("[a](b) and [c](d:e)") == "a and c"
    assert strip_entities("array[0] costs (about) $3") == "array[0] costs (about) $3"


def test_examples_are_merged_deduplicated_and_fingerprint_is_order_free(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n    - y\n")
    two = write(
        tmp_path,
        "two.yml",
        "nlu:\n- intent: a\n  examples: |\n    - X\n- intent: b\n  examples: |\n    - z\n",
    )
    forward = load_training_data([one, two])
    backward = load_training_data([two, one])
    assert forward.examples == backward.examples == [("X", "a"), ("x", "a"), ("y", "a"), ("z", "b")]
    assert forward.fingerprint() == backward.fingerprint()
    assert len(forward.fingerprint()) == 64
    changed = TrainingData(examples=[("x", "a"), ("y", "a"), ("zz", "b")], intents=["a", "b"])
    assert changed.fingerprint() != forward.fingerprint()


def test_shipped_payments_data_loads() -> None:
    path = Path(__file__).parents[3] / "bot_configs" / "nlu" / "payments.yml"
    data = load_training_data([path])
    assert len(data.intents) == 18
    counts = {i: sum(1 for _, j in data.examples if j == i) for i in data.intents}
    assert all(15 <= n <= 25 for n in counts.values()), counts
    assert all("](" not in text and "]{" not in text for text, _ in data.examples)


@pytest.mark.parametrize(
    ("item", "key", "needle"),
    [
        ("- intent: b", "nlu[1].examples", "missing"),
        ("- intent: b\n  synonym: c\n  examples: |\n    - q", "nlu[1]", "exactly one of"),
        ("- intent: b\n  examples: 42", "nlu[1].examples", "got int"),
        ("- intent: b\n  examples: {text: q}", "nlu[1].examples", "got dict"),
        ("- intent: b\n  examples:\n  - text: 7", "nlu[1].examples[0].text", "string 'text'"),
        ("- intent: b\n  examples:\n  - just text", "nlu[1].examples[0]", "mapping"),
        ("- intent: b\n  examples: |\n    no dash", "nlu[1].examples", "line 1"),
        ("- intent: b\n  examples: |\n    - BOTH", "nlu[1].examples", "also an example of"),
        ("- intent: yes\n  examples: |\n    - q", "nlu[1].intent", "quote it"),
        ("- intent: two words\n  examples: |\n    - q", "nlu[1].intent", "without spaces"),
        ("- intent: b\n  exmples: |\n    - q", "nlu[1].exmples,nlu[1].examples", "unknown key"),
        ("- regex: r\n  examples: |\n    - ([a-z", "nlu[1].examples", "regular expression"),
        ("- intent: b\n  examples: |\n    - [x]{bad json}", "nlu[1].examples", "annotation"),
        ("- just a string", "nlu[1]", "mapping"),
    ],
)
def test_item_errors_name_file_and_key(tmp_path: Path, item: str, key: str, needle: str) -> None:
    text = f'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - both\n    - other\n{item}\n'
    found = errors_of([write(tmp_path, "payments.yml", text)])
    assert [(e.file, e.key) for e in found] == [("nlu/payments.yml", k) for k in key.split(",")]
    assert needle in found[0].message


def test_duplicate_across_files_names_both_places(tmp_path: Path) -> None:
    one = write(
        tmp_path, "one.yml", "nlu:\n- intent: a\n  examples: |\n    - check my [balance](x)\n"
    )
    two = write(tmp_path, "two.yml", "nlu:\n- intent: b\n  examples: |\n    - Check  my balance\n")
    [error] = errors_of([one, two])
    assert (error.file, error.key) == ("nlu/two.yml", "nlu[0].examples")
    assert "'a'" in error.message and "nlu/one.yml" in error.message


@pytest.mark.parametrize(
    ("text", "key", "needle"),
    [
        ('version: "3.1"\nnlu:\n  intent: a\n', "nlu", "expected a list"),
        ('version: "3.1"\n', "nlu", "got nothing"),
        ("version: 3.1\nnlu: []\n", "version", "quoted string"),
        ("nlu: []\nnul: []\n", "nul", "unknown key"),
        ("- a\n- b\n", "", "mapping"),
        ("nlu: [\n", "", "invalid YAML"),
    ],
)
def test_file_errors_name_file_and_key(tmp_path: Path, text: str, key: str, needle: str) -> None:
    good = write(
        tmp_path,
        "good.yml",
        "nlu:\n- intent: a\n  examples: |\n    - x\n- intent: b\n  examples: |\n    - y\n",
    )
    found = errors_of([good, write(tmp_path, "payments.yml", text)])
    assert [(e.file, e.key) for e in found] == [("nlu/payments.yml", key)], found
    assert needle in found[0].message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "nlu:\n- intent: a\n- intent: b\n  examples: 3\n"
        "- intent: c\n  regex: d\n  examples: |\n    - e\n"
    )
    found = errors_of([write(tmp_path, "many.yml", text)])
    assert [e.key for e in found] == ["nlu[0].examples", "nlu[1].examples", "nlu[2]"]
    assert str(found[0]).startswith("nlu/many.yml: nlu[0].examples: ")


def test_needs_two_intents(tmp_path: Path) -> None:
    found = errors_of([write(tmp_path, "one.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n")])
    assert [(e.file, e.key) for e in found] == [("nlu/one.yml", "nlu")]


def test_unreadable_file(tmp_path: Path) -> None:
    found = errors_of([tmp_path / "nlu" / "missing.yml"])
    assert [(e.file, e.key) for e in found] == [("nlu/missing.yml", "")]
    assert "cannot read" in found[0].message


# --------------------------------------------------------------------------- CSV


def test_csv_rows_are_examples_like_yaml_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.csv",
        'text,intent\nhello there,greet\n"well, hi",greet\n\n  bye   now ,goodbye\n'
        '"line one\nline two",goodbye\n',
    )
    data = load_training_data([path])
    assert data.intents == ["goodbye", "greet"]
    assert sorted(data.examples) == [
        ("bye now", "goodbye"),
        ("hello there", "greet"),
        ("line one line two", "goodbye"),
        ("well, hi", "greet"),
    ]


def test_csv_and_yaml_files_merge_and_conflicts_name_both(tmp_path: Path) -> None:
    csv_file = write(tmp_path, "a.csv", "text,intent\nhello,greet\nbye,goodbye\n")
    yml = write(tmp_path, "b.yml", 'version: "3.1"\nnlu:\n- intent: thanks\n  examples: |\n'
                "    - Hello\n")  # fmt: skip
    [err] = errors_of([csv_file, yml])
    assert err.file == "nlu/b.yml" and "'greet' (nlu/a.csv: line 2)" in err.message


@pytest.mark.parametrize(
    ("text", "key", "needle"),
    [
        ("", "line 1", "expected the header 'text,intent', got 'an empty file'"),
        ("sentence,label\nhi,greet\n", "line 1", "got 'sentence,label'"),
        ("text,intent\nhi,greet\nbye\n", "line 3", "got 1 field(s): ['bye']"),
        ("text,intent\nhi,greet\na,b,c\n", "line 3", "got 3 field(s)"),
        ("text,intent\nhi,greet\n,goodbye\n", "line 3", "expected a text"),
        ("text,intent\nhi,greet\nbye,good bye\n", "line 3", "without spaces"),
    ],
)
def test_a_bad_csv_row_names_its_line(tmp_path: Path, text: str, key: str, needle: str) -> None:
    [err] = errors_of([write(tmp_path, "a.csv", text)])
    assert (err.file, err.key) == ("nlu/a.csv", key)
    assert needle in err.message


def test_csv_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,intent\n\xff\xfe caf\xe9,greet\n")
    [err] = errors_of([path])
    assert "invalid CSV" in err.message
