"""Progress of a long command on stderr, so that stdout stays the command's output: a bar
redrawn in place on a terminal, a plain count line every ``every`` items otherwise (a log
file or CI output keeps readable lines)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR = 30
REDRAW_S = 0.2  # a terminal is redrawn at most this often


class Progress:
    """Counts done items of ``what`` (``"sessions"``); ``total`` (None: unknown) and
    ``done`` are in the caller's unit (items, or bytes of a file read)."""

    def __init__(
        self, what: str, *, total: int | None = None, every: int = 1000, out: TextIO | None = None
    ) -> None:
        self.what = what
        self.total = total
        self.every = every
        self.count = 0
        self._out = out if out is not None else sys.stderr
        self._tty = self._out.isatty()
        self._drawn = 0.0
        self._shown = False

    def step(self, done: int | None = None) -> None:
        """One more item; ``done`` says how far through ``total`` the command is."""
        self.count += 1
        share = None
        if self.total and done is not None:
            share = min(done / self.total, 1.0)
        if self._tty:
            now = time.monotonic()
            if now - self._drawn >= REDRAW_S:
                self._drawn = now
                self._draw(share)
        elif self.count % self.every == 0:
            pct = f" ({share:.0%})" if share is not None else ""
            print(f"... {self.count} {self.what}{pct}", file=self._out, flush=True)

    def _draw(self, share: float | None) -> None:
        if share is None:
            line = f"{self.count} {self.what}"
        else:
            filled = round(share * BAR)
            line = f"[{'#' * filled}{'.' * (BAR - filled)}] {share:4.0%} {self.count} {self.what}"
        self._out.write(f"\r{line}")
        self._out.flush()
        self._shown = True

    def clear(self) -> None:
        """Take the bar off its line, so that output written now starts a clean line."""
        if self._shown:
            self._out.write("\r\033[K")
            self._out.flush()
            self._shown = False
            self._drawn = 0.0  # redrawn at the next step

    def finish(self) -> None:
        """End the bar's line (nothing to do for plain lines)."""
        if self._shown:
            self._out.write("\n")
            self._out.flush()
            self._shown = False


class Bar:
    """A progress bar on stderr, redrawn when its whole percentage changes."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent != self._shown:
            self._shown = percent
            filled = percent * 30 // 100
            end = "\n" if done >= total else ""
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r{self.label:<34} [{bar}] {percent:3d}%", end=end, file=sys.stderr, flush=True)
