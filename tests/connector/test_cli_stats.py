"""``midtier stats``: success rates per provider and intent over the configured window, read
from a SQLite store's outcomes, judged against the routes' ``min_success_rate``, as a
table, as JSON, and drawn over time."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.server import DEFAULT_CONFIG, REPO

from connector.cli import main
from connector.records import Changes, OutcomeEntry
from connector.sessions import Leg
from connector.store.sqlite import SqliteStore

NOW = datetime.now(UTC).replace(microsecond=0)
# faq's minimum, and how many outcomes judge it (the store's outcomes over 48 h).
SUCCESS_RATE = """
success_rate: {window_h: 48, min_outcomes: 4, keep_days: 30}
"""


def _outcome(n: int, provider: str, intent: str, hours_ago: float, **more: Any) -> OutcomeEntry:
    kind = "resolved" if more.get("success", True) else "handed_off"
    return OutcomeEntry.model_validate(
        {
            "leg_id": f"leg-{n}",
            "session_id": "mts_placeholder",
            "provider": provider,
            "intent": intent,
            "kind": kind,
            "success": True,
            "at": NOW - timedelta(hours=hours_ago),
            **more,
        }
    )


# (provider, intent, hours ago, success, switched)
OUTCOMES = [
    # faq check_balance: 4 of 5 over the window, one more before it (60 h ago).
    *[("faq", "check_balance", h, True, False) for h in (1, 2, 3, 30)],
    ("faq", "check_balance", 5, False, True),
    ("faq", "check_balance", 60, False, True),
    # faq fees: 1 of 4, three handed off with a switch away: below the minimum 70%.
    ("faq", "fees", 1, True, False),
    *[("faq", "fees", h, False, True) for h in (2, 4, 26)],
    # faq greet: 2 outcomes, fewer than min_outcomes 4.
    ("faq", "greet", 3, True, False),
    ("faq", "greet", 20, False, False),
    # faq, no intent known: never judged.
    ("faq", "", 6, False, False),
    # disputes has no minimum.
    *[("disputes", "dispute_charge", h, h != 7, False) for h in (7, 8, 9)],
    # agents: only before the window.
    ("agents", "report_fraud", 50, False, True),
]


async def _seed(data: Path) -> None:
    clock = FakeClock()
    clock.current = NOW - timedelta(hours=72)
    store = SqliteStore(data / "midtier.db", clock=clock)
    await store.start()
    for n, (provider, intent, hours_ago, success, switched) in enumerate(OUTCOMES):
        clock.current = NOW - timedelta(hours=hours_ago)
        session, _ = await store.find_or_create("webchat", f"wc-{n}", f"user-{n}")
        session.legs.append(
            Leg(channel="webchat", channel_conversation_id=f"wc-{n}", provider=provider)
        )
        session = await store.save(session)
        entry = _outcome(n, provider, intent, hours_ago, success=success, switched=switched)
        entry = entry.model_copy(update={"leg_id": session.legs[0].id, "session_id": session.id})
        await store.commit(
            Changes(session=session, expected_version=session.version, outcomes=[entry])
        )
    await store.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    found = tmp_path / "data"
    found.mkdir()
    asyncio.run(_seed(found))
    return found


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The shipped config with faq needing 70% success over 4 outcomes in 48 h."""
    found = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, found, ignore=shutil.ignore_patterns("__pycache__"))
    routing = found / "routing.yaml"
    text = routing.read_text()
    assert "  disputes:\n" in text
    text = text.replace("  disputes:\n", "    min_success_rate: 0.7\n  disputes:\n", 1)
    routing.write_text(text + SUCCESS_RATE)
    return found


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["stats", *args, "--json"]) == 0
    found: dict[str, Any] = json.loads(capsys.readouterr().out)
    return found


def _rows(found: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(row["provider"], row["intent"]): row for row in found["rows"]}


def _table(out: str) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (provider, intent), each its cells (split at 2+ spaces)."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("provider"))
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines[header + 1 :] if line.strip()]
    return {(c[0], c[1]): c[2:] for c in cells}


def test_the_table_counts_the_configured_window_and_marks_each_judged_row(
    data: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--data", str(data), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("success rates from ")
    table = _table(out)
    # outcomes, successes, rate, switches, minimum, status
    assert table[("faq", "check_balance")] == ["5", "4", "80.0%", "1", "70.0%", "ok"]
    assert table[("faq", "fees")] == ["4", "1", "25.0%", "3", "70.0%", "below min"]
    assert table[("faq", "greet")] == ["2", "1", "50.0%", "0", "70.0%", "too few"]
    assert table[("faq", "(none)")] == ["1", "0", "0.0%", "0", "70.0%"]
    assert table[("faq", "(all)")] == ["12", "6", "50.0%", "4", "70.0%"]
    assert table[("disputes", "dispute_charge")] == ["3", "2", "66.7%", "0", "-"]
    # agents' only outcome is 50 h old: outside routing.yaml's 48 h window.
    assert {provider for provider, _ in table} == {"faq", "disputes"}
    # Aligned columns: every rate ends under the end of its header, every intent starts
    # under its own.
    header, *rows = out.splitlines()[1:]
    assert {row.index("%") + 1 for row in rows} == {header.index("rate") + len("rate")}
    assert {row.index(intent) for row, (_, intent) in zip(rows, table, strict=True)} == {
        header.index("intent")
    }


def test_json_has_the_window_and_every_row_with_its_judgement(
    data: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _json(capsys, "--data", str(data), "--config", str(config))
    assert set(found) == {"since", "until", "rows"}
    since, until = datetime.fromisoformat(found["since"]), datetime.fromisoformat(found["until"])
    assert until - since == timedelta(hours=48)
    assert abs(until - datetime.now(UTC)) < timedelta(minutes=5)
    rows = _rows(found)
    assert rows[("faq", "fees")] == {
        "provider": "faq",
        "intent": "fees",
        "outcomes": 4,
        "successes": 1,
        "success_rate": 0.25,
        "switches": 3,
        "min_success_rate": 0.7,
        "status": "below min",
    }
    assert rows[("faq", "")]["status"] is None  # the router judges no leg without an intent
    assert rows[("faq", None)]["outcomes"] == 12  # the provider's total
    assert rows[("disputes", "dispute_charge")]["min_success_rate"] is None
    assert rows[("disputes", "dispute_charge")]["status"] is None
    assert [(r["provider"], r["intent"]) for r in found["rows"]] == [
        ("disputes", "dispute_charge"),
        ("disputes", None),
        ("faq", ""),
        ("faq", "check_balance"),
        ("faq", "fees"),
        ("faq", "greet"),
        ("faq", None),
    ]


def test_since_hours_provider_and_intent_choose_what_is_counted(
    data: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", str(data), "--config", str(config)]
    wider = _rows(_json(capsys, *common, "--hours", "72"))
    assert wider[("agents", "report_fraud")]["outcomes"] == 1
    assert wider[("faq", "check_balance")]["outcomes"] == 6
    since = (NOW - timedelta(hours=4, minutes=30)).isoformat()
    recent = _json(capsys, *common, "--since", since, "--provider", "faq")
    assert datetime.fromisoformat(recent["since"]) == NOW - timedelta(hours=4, minutes=30)
    rows = _rows(recent)
    assert {provider for provider, _ in rows} == {"faq"}
    assert (rows[("faq", "check_balance")]["outcomes"], rows[("faq", "fees")]["outcomes"]) == (
        3,
        3,
    )
    # 3 of 3 at 1, 2, 3 h ago: too few for min_outcomes 4, whatever the rate.
    assert rows[("faq", "check_balance")]["status"] == "too few"
    none = _rows(_json(capsys, *common, "--hours", "72", "--intent", ""))
    assert list(none) == [("faq", ""), ("faq", None)]


def test_without_a_config_the_window_is_a_week_and_nothing_is_judged(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["stats", "--data", str(data), "--config", str(tmp_path / "nowhere"), "--json"]) == 0
    )
    captured = capsys.readouterr()
    assert "warning: config" in captured.err and "168 h" in captured.err
    found = json.loads(captured.out)
    until, since = datetime.fromisoformat(found["until"]), datetime.fromisoformat(found["since"])
    assert until - since == timedelta(hours=168)
    rows = _rows(found)
    assert rows[("faq", "check_balance")]["outcomes"] == 6
    assert {row["status"] for row in found["rows"]} == {None}


def test_an_empty_window_says_so_in_one_line(
    data: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    later = (NOW + timedelta(hours=1)).isoformat()
    args = ["stats", "--data", str(data), "--config", str(config), "--since", later]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("no outcomes from ") and len(out.splitlines()) == 1
    assert main([*args, "--provider", "nobody", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == []


def test_the_plot_is_a_png_matplotlib_reads_back(
    data: Path, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    png = tmp_path / "rates.png"
    args = ["--data", str(data), "--config", str(config), "--bucket", "6h", "--plot", str(png)]
    found = _json(capsys, *args)
    assert found["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png).shape
    assert height > 100 and width > 100
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_plot_series_break_where_a_bucket_has_no_outcomes() -> None:
    from connector.records import OutcomeCount
    from connector.stats_plot import bucket_starts, series

    day = datetime(2026, 3, 2, tzinfo=UTC)
    starts = bucket_starts(day + timedelta(hours=1, minutes=5), day + timedelta(hours=4), 3600)
    assert starts == [day + timedelta(hours=h) for h in (1, 2, 3, 4)]
    counts = [
        OutcomeCount("faq", "fees", 1, 4, 3, day + timedelta(hours=1)),
        OutcomeCount("faq", "greet", 1, 1, 0, day + timedelta(hours=1)),
        OutcomeCount("faq", "fees", 2, 2, 1, day + timedelta(hours=3)),
    ]
    assert series(counts, starts) == {"faq": ([0.4, None, 1.0, None], [3, 0, 1, 0])}


def test_without_matplotlib_the_plot_is_refused_with_the_install_command(
    data: Path,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what ``import`` sees uninstalled
    png = tmp_path / "rates.png"
    args = ["stats", "--data", str(data), "--config", str(config), "--plot", str(png)]
    assert main(args) == 2
    assert "pip install 'midtier[plots]'" in capsys.readouterr().err
    assert not png.exists()


def test_a_missing_store_exits_1_and_a_bad_since_or_bucket_exits_2(
    tmp_path: Path, data: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--data", str(tmp_path / "nowhere"), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"no session store at {tmp_path / 'nowhere' / 'midtier.db'} (is --data right?)" in err
    common = ["stats", "--data", str(data), "--config", str(config)]
    assert main([*common, "--since", "yesterday"]) == 2
    assert "--since 'yesterday': expected an ISO time" in capsys.readouterr().err
    assert main([*common, "--since", "2026-12-01T10:00"]) == 2
    assert "give its UTC offset" in capsys.readouterr().err
    assert main([*common, "--bucket", "3 weeks"]) == 2
    assert "--bucket '3 weeks'" in capsys.readouterr().err
    assert main([*common, "--hours", "0"]) == 2
    assert "--hours 0: expected more than 0" in capsys.readouterr().err


def test_as_a_process_errors_are_one_line_and_the_parser_imports_no_plotting(
    tmp_path: Path, data: Path, config: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "stats", "--data", str(data), "--since", "x"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: --since 'x'")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from connector.cli import _parser; _parser(); "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'connector.stats_plot') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_a_file_that_is_no_store_exits_2_with_one_line(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "midtier.db").write_text("not a database, just text that is long enough\n" * 40)
    assert main(["stats", "--data", str(tmp_path), "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {tmp_path / 'midtier.db'}: ")
