"""``midtier nlu eval --test FILE``: the deployment's own classifier against a test file,
with accuracy, out-of-scope figures, the most confused pairs and a confusion-matrix PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.server import DEFAULT_CONFIG

from connector.cli import main

# Examples the shipped model was trained on, so it answers them as labelled; one labelled
# wrong on purpose ("hello" is a greeting, not a question about fees).
ROWS = [
    ("hi", "greet"),
    ("good morning", "greet"),
    ("bye", "goodbye"),
    ("see you later", "goodbye"),
    ("hello", "fees"),
]


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text,intent\n" + "".join(f"{t},{i}\n" for t, i in rows))
    return path


def _eval(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> dict[str, object]:
    code = main(["nlu", "eval", *args, "--config", str(DEFAULT_CONFIG),
                 "--data-dir", str(tmp_path / "data"), "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    found: dict[str, object] = json.loads(out)
    return found


def test_the_deployments_model_is_scored_with_its_confused_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = _csv(tmp_path / "test.csv", ROWS)
    found = _eval(capsys, tmp_path, "--test", str(test))
    assert found["examples"] == 5
    assert found["in_scope_accuracy"] == pytest.approx(4 / 5)
    assert found["confused"] == [{"expected": "fees", "answered": "greet", "count": 1}]
    # Without out-of-scope examples there are no out-of-scope figures.
    assert (found["oos_recall"], found["oos_precision"]) == (None, None)
    assert (tmp_path / "data" / "nlu-cache").is_dir()  # trained as the server would, cached


def test_out_of_scope_examples_give_recall_and_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*ROWS[:4], ("zorblax quuxifies the frobnicator", "oos")]
    found = _eval(capsys, tmp_path, "--test", str(_csv(tmp_path / "test.csv", rows)))
    assert (found["oos_recall"], found["oos_precision"]) == (1.0, 1.0)
    assert found["in_scope_accuracy"] == 1.0


def test_the_confusion_matrix_is_drawn_as_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    png = tmp_path / "confusion.png"
    test = _csv(tmp_path / "test.csv", ROWS)
    found = _eval(capsys, tmp_path, "--test", str(test), "--confusion", str(png))
    assert found["confusion_png"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png).shape
    assert height > 200 and width > 200


def test_without_matplotlib_the_plot_is_refused_with_the_install_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    test = _csv(tmp_path / "test.csv", ROWS)
    png = tmp_path / "c.png"
    args = ["nlu", "eval", "--test", str(test), "--config", str(DEFAULT_CONFIG),
            "--data-dir", str(tmp_path / "data"), "--confusion", str(png)]  # fmt: skip
    assert main(args) == 2
    assert "pip install 'midtier[plots]'" in capsys.readouterr().err
    assert not png.exists()


def test_a_test_file_that_cannot_be_read_gets_one_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,intent\nhi,greet\njust text\n")
    args = ["nlu", "eval", "--test", str(bad), "--config", str(DEFAULT_CONFIG),
            "--data-dir", str(tmp_path / "data")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 3" in err
    assert main(["nlu", "eval"]) == 2
    assert "give --dataset, --train with --test, or --test" in capsys.readouterr().err
