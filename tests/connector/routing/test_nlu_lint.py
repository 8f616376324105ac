"""``midtier check`` warns, with file and line, about NLU data and routes that load but
are probably not meant: an example given twice, an intent with one example, an intent two
routes serve, an intent no route serves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.server import DEFAULT_CONFIG

from connector.cli import main

NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - Hi
- intent: fees
  examples: |
    - what fees do you charge
    - how much does it cost
- intent: lonely
  examples: |
    - just me
- intent: talk_to_human
  examples: |
    - a person please
    - let me talk to someone
- intent: out_of_scope
  examples: |
    - what is the meaning of life
"""
ROUTING = """fallback: agents
routes:
  faq:
    intents: [greet, fees]
  disputes:
    intents: [fees]
  agents:
    intents: [talk_to_human]
"""


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    (config / "nlu" / "payments.yml").write_text(NLU)
    (config / "routing.yaml").write_text(ROUTING)
    return config


def test_check_warns_with_file_and_line_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert main(["check", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{config}: ok (4 warning(s))\n"
    assert err.splitlines() == [
        "warning: nlu/payments.yml:7: greet: example given twice (first on line 5)",
        "warning: nlu/payments.yml:12: intent 'lonely' has one example: too few to learn it "
        "from; add a few more",
        "warning: routing.yaml:5: intent 'fees' is served by faq, disputes: disputes takes it "
        "only when faq cannot",
        "warning: nlu/payments.yml:12: intent 'lonely' is routed to no provider: it goes to "
        "the fallback 'agents'",
    ]


def test_the_shipped_deployment_has_nothing_to_warn_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--config", str(DEFAULT_CONFIG)]) == 0
    assert capsys.readouterr() == (f"{DEFAULT_CONFIG}: ok\n", "")


def test_judged_per_provider_a_route_serving_every_intent_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    (config / "routing.yaml").write_text(
        "fallback: agents\nnlu: {threshold_on: provider}\n"
        "routes:\n  faq:\n    intents: ['*']\n  agents:\n    intents: [talk_to_human]\n"
    )
    assert main(["check", "--config", str(config)]) == 0
    warned = [w for w in capsys.readouterr().err.splitlines() if "threshold_on" in w]
    assert warned == [
        "warning: routing.yaml:4: nlu.threshold_on is provider, and faq is the first to serve"
        " every intent: judged per provider, only the out-of-scope class can tell a message"
        " from one it serves"
    ]
    (config / "routing.yaml").write_text(ROUTING + "nlu: {threshold_on: provider}\n")
    assert main(["check", "--config", str(config)]) == 0
    assert "threshold_on" not in capsys.readouterr().err  # faq serves 2 of 4: no warning
