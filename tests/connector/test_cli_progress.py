"""Progress of long commands on stderr: a bar redrawn in place on a terminal, plain count
lines elsewhere."""

from __future__ import annotations

import io

from connector.cli_progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_count_line_comes_every_so_many_items_with_the_share_done() -> None:
    out = io.StringIO()
    progress = Progress("sessions replayed", total=1000, every=2, out=out)
    for done in (100, 200, 300, 400, 500):
        progress.step(done)
    progress.finish()
    assert out.getvalue().splitlines() == [
        "... 2 sessions replayed (20%)",
        "... 4 sessions replayed (40%)",
    ]


def test_without_a_total_the_lines_give_the_count_alone() -> None:
    out = io.StringIO()
    progress = Progress("sessions exported", every=1, out=out)
    progress.step()
    assert out.getvalue() == "... 1 sessions exported\n"


def test_on_a_terminal_a_bar_is_drawn_in_place_cleared_for_output_and_ended() -> None:
    out = _Terminal()
    progress = Progress("sessions replayed", total=4, out=out)
    progress.step(2)
    assert out.getvalue() == f"\r[{'#' * 15}{'.' * 15}]  50% 1 sessions replayed"
    progress.clear()
    assert out.getvalue().endswith("\r\033[K")
    progress.step(4)  # after a clear it is drawn again at once
    progress.finish()
    assert out.getvalue().endswith(f"\r[{'#' * 30}] 100% 2 sessions replayed\n")
