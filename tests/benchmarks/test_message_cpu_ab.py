"""``benchmarks/message_cpu_ab.py`` reads the figures of the tables ``message_cpu.py`` prints
(built here by that script's own ``table``), and reports their medians."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import message_cpu  # noqa: E402
import message_cpu_ab as ab  # noqa: E402
import message_cpu_rows as rows  # noqa: E402


def _table(webchat_cpu_s: float, legacy_cpu_s: float) -> str:
    results = [
        rows.Row("midtier-webchat", "FAQ bot", "send", 1600, 1.2, webchat_cpu_s,
                 reply_ms=(10.5, 16.2, 29.2), note="without the first: 10.4 / 15.8 / 22.0 ms"),
        rows.Row("legacy-adapter", "FAQ bot", "POST", 13_175, 10.0, legacy_cpu_s,
                 reply_ms=(11.6, 16.0, 18.3), http_ms=(11.6, 16.0, 18.3)),
    ]  # fmt: skip
    return message_cpu.table(results, {})


def test_a_round_is_read_from_the_benchmarks_own_table() -> None:
    got = ab.parse(_table(webchat_cpu_s=1.1504, legacy_cpu_s=10.0))
    assert got.webchat_us == pytest.approx(719, abs=0.5)
    assert got.legacy_us == pytest.approx(759, abs=0.5)
    assert got.p99_ms == 29.2
    assert got.ratio == pytest.approx(719 / 759, abs=1e-3)


def test_the_report_gives_each_round_and_the_medians() -> None:
    rounds = {
        "other": [ab.Round(800, 700, 25.0), ab.Round(900, 720, 20.0), ab.Round(700, 760, 30.0)],
        "this": [ab.Round(600, 700, 21.0), ab.Round(650, 650, 19.0), ab.Round(700, 700, 23.0)],
    }
    report = ab.report("444f638", rounds, {"other": 2.13, "this": 1.83})
    assert "| 444f638 | 3 | 700 | 760 | 0.92x | 30.0 |" in report
    assert "| 444f638 | 800 us | 1.14x (0.92-1.25) | 25.0 | 2.13 M |" in report
    assert "| this checkout | 650 us | 1.00x (0.86-1.00) | 21.0 | 1.83 M |" in report


def test_a_table_without_the_row_is_refused_with_what_it_said() -> None:
    with pytest.raises(SystemExit, match="no legacy-adapter row"):
        ab.parse("| midtier-webchat | a | b | 1 | 1 | 700 | 1 / 2 / 3 | - |")
