"""Where midtier's time goes under the web chat load (``--profile``).

midtier runs as in the ``midtier-webchat`` row. After the warm-up, while the N x M messages
run, two things are recorded:

* each thread's user and system CPU time, from ``/proc/<pid>/task/<tid>/stat``: exact;
* ``py-spy record --gil``: samples of whichever thread holds the GIL, that is, of the Python
  code running. Each sample is put in one kind of work, the first of :data:`KINDS` it
  matches. What runs without the GIL (SQLite's own C code, system calls: socket writes,
  ``pwrite``, ``getrandom``, ``epoll_wait``) is not in these samples; it is in the system
  time above and in ``--instructions``' counts. py-spy without ``--gil`` would sample it,
  but it also counts a thread waiting for the GIL, or for a core, as busy, and the two
  threads here hand the GIL to each other about 120 times per message.

Then the functions most often running (the leaves of the stacks). ``--nonblocking``: py-spy
does not stop midtier at each sample.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import message_cpu_loads as loads
import message_cpu_servers as servers
from message_cpu_rows import Options

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")
# Paths shown from where Python finds them: "pydantic/main.py", "asyncio/events.py".
_PATHS = sysconfig.get_paths()
_PREFIXES = tuple(f"{p}/" for p in (_PATHS["purelib"], str(servers.REPO), _PATHS["stdlib"]))


@dataclass
class Sample:
    """One stack of one thread, as often as py-spy saw it."""

    tid: int
    thread: str
    frames: list[tuple[str, str]]  # (function, path), outermost first
    count: int

    @property
    def leaf(self) -> tuple[str, str]:
        """The function that was running."""
        return self.frames[-1] if self.frames else ("?", "?")

    def runs(self, path: str, function: str = "") -> bool:
        """Whether a function of ``path`` (whose name ends with ``function``) is on the stack."""
        return any(p == path and f.endswith(function) for f, p in self.frames)


def _short(path: str) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


RATE = 250  # samples per second
NLU = "connector/routing/nlu_default.py"
INPROC = "adapters/providers/botbuilder_inproc.py"
HANDOFF = {
    "run_in_executor",
    "call_soon_threadsafe",
    "_write_to_self",
    "_read_from_self",
    "_call_set_state",
    "wrap_future",
}


def _store_thread(sample: Sample) -> bool:
    return sample.thread.startswith("midtier-sqlite")


KINDS: list[tuple[str, Callable[[Sample], bool]]] = [
    ("intent classification (routing/nlu_default.py classify)", lambda s: s.runs(NLU, "classify")),
    (
        "the bot's turn (botbuilder_inproc.py: botbuilder, the bot, conversions)",
        lambda s: s.runs(INPROC),
    ),
    (
        "hand-offs between the loop and the SQLite thread (executor, futures, locks)",
        lambda s: (
            any(f.rsplit(".", 1)[-1] in HANDOFF for f, _ in s.frames)
            or s.leaf[1].startswith(("concurrent/", "threading.py"))
        ),
    ),
    ("pydantic: validate, dump, copy (either thread)", lambda s: s.leaf[1].startswith("pydantic")),
    ("json module", lambda s: s.leaf[1].startswith("json/")),
    ("the store's Python on the SQLite thread (sqlite_tx, sqlite_db)", _store_thread),
    ("aiohttp: HTTP, WebSocket frames", lambda s: s.leaf[1].startswith("aiohttp/")),
    (
        "event loop: scheduling, selector",
        lambda s: s.leaf[1].startswith(("asyncio/", "selectors.py")),
    ),
    (
        "midtier's own Python (engine, outbox, to_user, channel, store code)",
        lambda s: s.leaf[1].startswith(("connector/", "adapters/")),
    ),
    ("other (uuid, contextlib, copy, typing, ...)", lambda s: True),
]


def parse(raw: str) -> list[Sample]:
    """py-spy's raw output (``--threads``): ``thread (id): name;frame;... count`` a line."""
    samples = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        head, *frames = stack.split(";")
        tid, _, thread = head.removeprefix("thread (").partition("): ")
        parsed = []
        for frame in frames:
            found = _FRAME.match(frame)
            if found:
                parsed.append((found["function"], _short(found["path"])))
        samples.append(Sample(int(tid, 0), thread, parsed, int(count)))
    return samples


def thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds of each thread of a process so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
        seconds[int(task.name)] = (int(fields[11]) / ticks, int(fields[12]) / ticks)
    return seconds


def cpu_table(
    cpu: dict[int, tuple[float, float]], names: dict[int, str], pid: int, messages: int
) -> list[str]:
    """Each thread's user and system CPU per message."""
    lines = ["| thread | user us/msg | system us/msg | total |", "|---|---|---|---|"]
    total_user = total_system = 0.0
    for tid, (user, system) in sorted(cpu.items(), key=lambda item: -sum(item[1])):
        if user + system <= 0:
            continue
        name = "MainThread (the event loop)" if tid == pid else names.get(tid, f"thread {tid}")
        u, s = user / messages * 1e6, system / messages * 1e6
        total_user, total_system = total_user + u, total_system + s
        lines.append(f"| {name} | {u:,.0f} | {s:,.0f} | {u + s:,.0f} |")
    total = total_user + total_system
    lines.append(f"| all | {total_user:,.0f} | {total_system:,.0f} | {total:,.0f} |")
    return lines


def gil_table(samples: list[Sample], gil_us: float, top: int = 15) -> list[str]:
    """Kinds of Python work, then the functions most often running, as shares of the samples
    and of ``gil_us``, the GIL's time held per message."""
    total = sum(s.count for s in samples) or 1
    kinds: dict[str, float] = defaultdict(float)
    leaves: dict[str, float] = defaultdict(float)
    for sample in samples:
        kinds[next(name for name, matches in KINDS if matches(sample))] += sample.count
        function, path = sample.leaf
        leaves[f"`{function}` ({path}, {sample.thread})"] += sample.count
    lines = ["| Python work (GIL held) | share | ~us per message |", "|---|---|---|"]
    for kind, n in _largest(kinds):
        lines.append(f"| {kind} | {n / total:.1%} | {n / total * gil_us:,.0f} |")
    lines += ["", "| running (leaf of the stack) | share | ~us per message |", "|---|---|---|"]
    for leaf, n in _largest(leaves)[:top]:
        lines.append(f"| {leaf} | {n / total:.1%} | {n / total * gil_us:,.0f} |")
    return lines


def _largest(values: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda item: -item[1])


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def main(options: Options, raw_out: str | None = None) -> None:
    """Profile the midtier-webchat row and print the summary."""
    py_spy = _py_spy()
    if py_spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        config = servers.midtier_config(Path(tmp), None)
        port = servers.free_port()
        command = servers.midtier(port, config, Path(tmp) / "data")
        raw = Path(raw_out) if raw_out else Path(tmp) / "stacks.txt"
        async with servers.serve("midtier", command, port, ready_path="/healthz") as server:
            await loads.webchat(server.base, options.conversations, options.warmup)
            spy = await asyncio.create_subprocess_exec(
                *(py_spy, "record", "--pid", str(server.pid), "--format", "raw"),
                *("--rate", str(RATE), "--gil", "--nonblocking", "--threads", "--function"),
                "--full-filenames",
                *("--output", str(raw)),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert spy.stdout is not None
            started = await asyncio.wait_for(spy.stdout.readline(), 30)  # "Sampling process..."
            if b"Sampling" not in started:
                raise SystemExit(f"py-spy did not start: {started.decode(errors='replace')}")
            cpu0, wall0 = thread_cpu(server.pid), time.monotonic()
            run = await loads.webchat(server.base, options.conversations, options.messages)
            latencies = run.latencies
            cpu1, wall = thread_cpu(server.pid), time.monotonic() - wall0
            spy.send_signal(signal.SIGINT)
            out, _ = await spy.communicate()
            if not raw.exists():
                raise SystemExit(f"py-spy wrote nothing: {out.decode(errors='replace')}")
        samples = parse(raw.read_text())
    messages = len(latencies)
    cpu = {
        tid: (user - cpu0.get(tid, (0.0, 0.0))[0], system - cpu0.get(tid, (0.0, 0.0))[1])
        for tid, (user, system) in cpu1.items()
    }
    names = {s.tid: s.thread for s in samples}
    held = sum(s.count for s in samples) / RATE  # seconds the GIL was seen held
    print(f"{messages:,} messages in {options.conversations} conversations, {wall:.1f} s")
    print()
    print("\n".join(cpu_table(cpu, names, server.pid, messages)))
    print()
    print(
        f"GIL held {held / wall:.0%} of the time, {held / messages * 1e6:,.0f} us per message; "
        f"{sum(s.count for s in samples):,} samples at {RATE} Hz"
    )
    print()
    print("\n".join(gil_table(samples, held / messages * 1e6)))
