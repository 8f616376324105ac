"""``scripts/try-channel``: a channel tried against a fake platform answers like the real one."""

from __future__ import annotations

import pytest
from support.try_channel import main


def test_trying_a_channel_prints_the_bots_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["telegram", "hi", "what's my balance?"]) == 0
    out = capsys.readouterr().out
    assert "you> hi" in out and "you> what's my balance?" in out
    assert "telegram <- " in out and "Acme Pay help assistant" in out
    assert "Home tab" in out  # the balance answer


def test_an_unknown_kind_is_refused_with_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["carrier-pigeon", "hi"])
    assert exited.value.code == 2
    assert "telegram" in capsys.readouterr().err
