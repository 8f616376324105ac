"""Where midtier's time goes under the web chat load (``--profile``), sampled by py-spy.

midtier runs as in the ``midtier-webchat`` row; after the warm-up, ``py-spy record`` samples
its threads (the event loop and the SQLite thread) while the N x M messages run, and each
thread's own CPU time is read from ``/proc/<pid>/task/<tid>/stat`` before and after. Each
sample is put in one kind of work, the first of :data:`KINDS` that it matches; a thread's CPU
time is shared out over its samples, so the microseconds per message add up to the
process's CPU per message. (py-spy also counts a thread that is ready to run but waiting for
a core, or just woken, as busy: weighing by each thread's CPU time keeps an idle thread's
samples from counting. The SQLite thread is seen waiting for its next job, in
``SimpleQueue.get``, in most of its samples: those are left out of the weighing, as waiting.)
Then the functions most often running (the leaves of the stacks). Run with ``--nonblocking``
so that py-spy does not stop midtier at each sample.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import message_cpu_loads as loads
import message_cpu_servers as servers
from message_cpu_rows import Options

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")
_PREFIXES = (
    str(Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
    + "/site-packages/",
    str(servers.REPO) + "/",
    str(Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}") + "/",
)


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


WAITING = ("_worker", "concurrent/futures/thread.py")  # an executor thread waits for work
NLU = "connector/routing/nlu.py"
INPROC = "adapters/providers/botbuilder_inproc.py"
HANDOFF = {
    "run_in_executor",
    "call_soon_threadsafe",
    "_write_to_self",
    "_read_from_self",
    "_call_set_state",
    "wrap_future",
}

KINDS: list[tuple[str, Callable[[Sample], bool]]] = [
    ("intent classification (routing/nlu.py classify)", lambda s: s.runs(NLU, "classify")),
    (
        "the bot's turn (botbuilder_inproc.py: botbuilder, the bot, conversions)",
        lambda s: s.runs(INPROC),
    ),
    (
        "hand-offs between the loop and the SQLite thread (executor, futures, wake-ups)",
        lambda s: (
            any(f.rsplit(".", 1)[-1] in HANDOFF for f, _ in s.frames)
            or s.leaf[1].startswith(("concurrent/", "threading.py"))
        ),
    ),
    (
        "SQLite: COMMIT and BEGIN (store thread, _transaction's own lines)",
        lambda s: s.thread.startswith("midtier-sqlite") and s.leaf[0] == "_transaction",
    ),
    ("pydantic: validate, dump, copy", lambda s: s.leaf[1].startswith("pydantic")),
    ("JSON (json module)", lambda s: s.leaf[1].startswith("json/")),
    (
        "SQLite: statements and the store's Python (store thread: sqlite_tx, sqlite_db)",
        lambda s: s.thread.startswith("midtier-sqlite"),
    ),
    ("socket writes (send() on loopback)", lambda s: s.leaf[0].endswith("Transport.write")),
    (
        "event loop: epoll, scheduling",
        lambda s: (
            s.leaf[1] == "selectors.py" or s.leaf[0] in ("BaseEventLoop._run_once", "Handle._run")
        ),
    ),
    ("activity ids (uuid4: os.urandom)", lambda s: s.leaf[1] == "uuid.py"),
    ("aiohttp: HTTP, WebSocket frames", lambda s: s.leaf[1].startswith("aiohttp/")),
    (
        "midtier's own Python (engine, outbox, to_user, channel, store code)",
        lambda s: s.leaf[1].startswith(("connector/", "adapters/")),
    ),
    ("other (asyncio tasks, contextlib, copy, ...)", lambda s: True),
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


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process so far."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds[int(task.name)] = servers.cpu_seconds_of(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
    return seconds


def summary(samples: list[Sample], cpu: dict[int, float], messages: int, top: int = 15) -> str:
    """The table of kinds of work (us per message), then the functions most often running.

    ``cpu``: each thread's CPU seconds over the sampled load."""
    waiting = sum(s.count for s in samples if s.leaf == WAITING)
    samples = [s for s in samples if s.leaf != WAITING]
    per_thread: Counter[int] = Counter()
    names: dict[int, str] = {}
    for sample in samples:
        per_thread[sample.tid] += sample.count
        names[sample.tid] = sample.thread
    weight = {tid: cpu.get(tid, 0.0) / n / messages * 1e6 for tid, n in per_thread.items()}
    kinds: dict[str, float] = defaultdict(float)
    leaves: dict[str, float] = defaultdict(float)
    for sample in samples:
        kind = next(name for name, matches in KINDS if matches(sample))
        kinds[kind] += sample.count * weight[sample.tid]
        function, path = sample.leaf
        leaves[f"`{function}` ({path}, {sample.thread})"] += sample.count * weight[sample.tid]
    unsampled = sum(t for tid, t in cpu.items() if tid not in per_thread) / messages * 1e6
    if unsampled >= 0.5:
        kinds["threads py-spy saw no sample of"] += unsampled
    total = sum(kinds.values()) or 1.0
    threads = ", ".join(
        f"{names[tid]} {cpu.get(tid, 0.0) / messages * 1e6:,.0f} us"
        for tid, _ in per_thread.most_common()
    )
    lines = [
        f"server CPU {total:,.0f} us per message ({threads}); "
        f"{sum(per_thread.values()):,} samples, and {waiting:,} of the SQLite thread waiting "
        "for work, left out",
        "",
        "| kind of work | share | us per message |",
        "|---|---|---|",
    ]
    for kind, us in _largest(kinds):
        lines.append(f"| {kind} | {us / total:.1%} | {us:,.0f} |")
    lines += ["", "| running (leaf of the stack) | share | us per message |", "|---|---|---|"]
    for leaf, us in _largest(leaves)[:top]:
        lines.append(f"| {leaf} | {us / total:.1%} | {us:,.0f} |")
    return "\n".join(lines)


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
                *("--rate", "250", "--nonblocking", "--threads", "--full-filenames", "--function"),
                *("--output", str(raw)),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert spy.stdout is not None
            started = await asyncio.wait_for(spy.stdout.readline(), 30)  # "Sampling process..."
            if b"Sampling" not in started:
                raise SystemExit(f"py-spy did not start: {started.decode(errors='replace')}")
            cpu0 = thread_cpu(server.pid)
            latencies, _ = await loads.webchat(server.base, options.conversations, options.messages)
            cpu1 = thread_cpu(server.pid)
            spy.send_signal(signal.SIGINT)
            out, _ = await spy.communicate()
            if not raw.exists():
                raise SystemExit(f"py-spy wrote nothing: {out.decode(errors='replace')}")
        print(f"{len(latencies):,} messages in {options.conversations} conversations")
        cpu = {tid: t - cpu0.get(tid, 0.0) for tid, t in cpu1.items()}
        print(summary(parse(raw.read_text()), cpu, len(latencies)))
