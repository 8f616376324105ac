"""Instructions per web chat message through midtier, counted by callgrind (``--instructions``).

A count of instructions does not move with the machine's load or clock the way CPU time
does, so it shows a change of a few percent that CPU time hides in its noise. ``perf stat
-e instructions`` would be cheaper, where the machine exposes the counter (a VM often does
not); callgrind works everywhere valgrind does.

midtier runs under ``valgrind --tool=callgrind --instr-atstart=no``: start-up and warm-up
run uninstrumented (about 5x slower than native rather than 50x). Then, for two rounds of
the same N web chat conversations, M1 and then M2 messages each, instrumentation is
switched on for the round only (``callgrind_control -i on|off``) and the counters dumped
(``callgrind_control -d``, which zeroes them). Each round opens its N sockets again, so
the difference of the two rounds divided by N * (M2 - M1) is what one more message costs,
sockets excluded; the second round alone divided by its messages is also printed. Two
rounds after them, N sockets that only say hello and N that send one message each, give
what a conversation's socket costs and what its first message does (a session, a leg, the
bot's handoff event); that pair runs twice, and the lower count is printed.
All threads count (the SQLite thread's included); the kernel's work in system calls does
not (callgrind sees user space only). From the same dumps: the instructions each library
ran itself (the interpreter, SQLite, pydantic-core, libc...), and how often a few telling
functions were called per message (SQLite statements stepped, WAL writes, socket sends,
``getrandom``, GIL hand-overs). About 30 s at 4 x (5, 15) here, most of it start-up.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import message_cpu_loads as loads
import message_cpu_servers as servers
from message_cpu_rows import Options

ROUNDS = (5, 15)  # messages per conversation in the two instrumented rounds
# Two more rounds after them, for what a conversation's start costs: sockets that only say
# hello, then sockets that send one message each (its session, its first leg, the bot's
# handoff event with its code redeemed: the messages that make the p99 when all start at once).
# Run twice, the lower count kept: now and then one of them also holds the checkpointer's
# copy of the WAL into the database (some 20 M instructions more in one pair of 4 messages).
OPENING = (0, 1)
CALLS = {
    "sqlite3_step": "SQLite statements stepped (sqlite3_step)",
    "sqlite3WalFrames": "SQLite transactions writing to the WAL (sqlite3WalFrames)",
    "pwrite": "pwrite() to the database files",
    "fdatasync": "fdatasync()",
    "send": "send() on sockets (frames, HTTP, the loop's self-pipe)",
    "recv": "recv() on sockets",
    "epoll_wait": "epoll_wait()",
    # uvloop's libuv writes, reads and waits through these instead
    "write": "write() (uvloop: frames on sockets, and the database's lock files)",
    "writev": "writev() (uvloop: frames on sockets)",
    "read": "read() (uvloop: sockets)",
    "epoll_pwait": "epoll_pwait() (uvloop)",
    "getrandom": "getrandom() (os.urandom: uuid4, secrets)",
    "take_gil": "GIL taken (after a release: I/O, SQLite, the other thread)",
}

VALGRIND_SLOWDOWN = 50.0


@dataclass
class Dump:
    """One callgrind dump: instructions, by the library that ran them, and calls made."""

    total: int = 0
    by_object: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)


def parse(text: str) -> Dump:
    """Self instructions per object file and call counts per function, from callgrind's
    format (names compressed as ``(id) name`` on first use, ``(id)`` after)."""
    dump = Dump()
    names: dict[tuple[str, str], str] = {}

    def name(kind: str, value: str) -> str:
        found = re.match(r"\((\d+)\)(?: (.*))?", value)
        if not found:
            return value
        if found[2]:
            names[kind, found[1]] = found[2]
        return names.get((kind, found[1]), "?")

    current, called, call_cost = "?", "?", False
    for line in text.splitlines():
        if not line:
            continue
        if line[0].isdigit() or line[0] in "+-*":
            if call_cost:  # the inclusive cost of the call just listed: not this function's
                call_cost = False
            elif " " in line:
                dump.by_object[current] += int(line.rsplit(" ", 1)[1])
            continue
        if line.startswith("totals:"):
            dump.total = int(line.split(":", 1)[1])
            continue
        key, _, value = line.partition("=")
        if key == "ob":
            current = name("ob", value)
        elif key == "cob":
            name("ob", value)
        elif key in ("fn", "cfn"):
            function = name("fn", value)
            called = function if key == "cfn" else called
        elif key == "calls":
            dump.calls[called] += int(value.split()[0])
            call_cost = True
    return dump


LIBRARIES = {
    "libpython": "the interpreter (all the Python code: midtier, aiohttp, botbuilder...)",
    "libsqlite3": "SQLite",
    "_pydantic_core": "pydantic-core (validation, serialization)",
    "libc.": "libc (memory, strings, system call wrappers)",
    "_multiarray_umath": "numpy (the intent classifier)",
    "_json": "json's C speedups",
    "loop": "uvloop (the event loop on libuv, --loop uvloop)",
    "_asyncio": "asyncio's C tasks and futures",
}


def _library(path: str) -> str:
    name = re.sub(r"\.cpython-[^/]*\.so$", "", path.rsplit("/", 1)[-1])
    return next((f"{label}" for key, label in LIBRARIES.items() if name.startswith(key)), name)


async def _control(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"callgrind_control {' '.join(args)} failed:\n{out.decode()}")


def _find_dump(directory: Path, trigger: str) -> tuple[Path, Dump] | None:
    for path in directory.glob("callgrind.out.*"):
        text = path.read_text(errors="replace")
        if f"desc: Trigger: dump {trigger}" in text and "\ntotals:" in text:
            return path, parse(text)
    return None


async def _dump(directory: Path, trigger: str, timeout_s: float = 60) -> tuple[Path, Dump]:
    """The file and the dump of ``trigger``, once callgrind wrote it whole."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(_find_dump, directory, trigger)
        if found is not None:
            return found
        await asyncio.sleep(0.2)
    raise SystemExit(f"no callgrind dump {trigger!r} in {directory}")


async def main(options: Options, keep: str | None = None) -> None:
    """Count instructions per message of the midtier-webchat row and print them; with
    ``keep``, copy the rounds' dumps there (``callgrind.round-N``, N of ``ROUNDS``, and
    ``callgrind.opening-N-a`` and ``-b``, N of ``OPENING``)."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian/Ubuntu: apt-get install -y valgrind)")
    conversations = min(options.conversations, 4)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        directory = Path(tmp)
        # Code runs ~50x slower under callgrind: the same waits, 50x, keep a message on the
        # path it takes at full speed (processed within ack_within_s, no "typing").
        config = servers.midtier_config(directory, None, slowdown=VALGRIND_SLOWDOWN)
        port = servers.free_port()
        wrapper = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={directory}/callgrind.out.%p",
        )
        command = servers.midtier(port, config, directory / "data", *wrapper)
        print("starting midtier under callgrind (about 30 s) ...", file=sys.stderr)
        async with servers.serve(
            "midtier (callgrind)", command, port, ready_path="/healthz", timeout_s=300
        ) as server:
            await loads.webchat(server.base, conversations, options.warmup)
            pid = str(server.pid)
            counts = []
            # The opening last, so that the others count what they did before it existed;
            # at the same N (4): 16 first messages at once, 50x slower, often outlast the
            # ack window and take the path of a slow message (a commit more, typing frames),
            # so that one run in two counted some 60% more.
            rounds = [(f"round-{m}", m) for m in ROUNDS]
            rounds += [(f"opening-{m}-{pair}", m) for pair in "ab" for m in OPENING]
            for name, messages in rounds:
                await _control("-i", "on", pid)
                run = await loads.webchat(server.base, conversations, messages)
                latencies = run.latencies
                await _control("-i", "off", pid)
                await _control("-d", name, pid)
                path, dump = await _dump(directory, name)
                counts.append((len(latencies), dump))
                if keep is not None:
                    await asyncio.to_thread(_keep, path, Path(keep), f"callgrind.{name}")
        if keep is not None:
            print(f"dumps kept in {keep}", file=sys.stderr)
    (n1, d1), (n2, d2), *opening = counts
    pairs = zip(opening[::2], opening[1::2], strict=True)
    first, hello = min((one.total - none.total, none.total) for (_, none), (_, one) in pairs)
    print(f"({time.monotonic() - began:.0f} s)", file=sys.stderr)
    _print(conversations, n1, d1, n2, d2, (hello, first))


def _keep(path: Path, keep: Path, name: str) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, keep / name)


def _print(
    conversations: int, n1: int, d1: Dump, n2: int, d2: Dump, opening: tuple[int, int]
) -> None:
    i1, i2 = d1.total, d2.total
    marginal = (i2 - i1) / (n2 - n1)
    hello, first = (total / conversations for total in opening)  # first: less hello's
    print("| row | conversations | messages per round | instructions per message |")
    print("|---|---|---|---|")
    print(
        f"| midtier-webchat, one more message | {conversations} | {n1} and {n2} "
        f"| {marginal / 1e6:.3f} M |"
    )
    print(
        f"| midtier-webchat, the {n2} messages with their sockets | {conversations} | {n2} "
        f"| {i2 / n2 / 1e6:.3f} M |"
    )
    print(
        f"| midtier-webchat, a conversation's first message (its session, leg, the bot's "
        f"handoff) | {conversations} at once | 1 | {first / 1e6:.3f} M |"
    )
    print(
        f"| midtier-webchat, a socket that only says hello (per socket, not a message) "
        f"| {conversations} at once | 0 | {hello / 1e6:.3f} M |"
    )
    print()
    print("| library (instructions it ran itself) | per message | share |")
    print("|---|---|---|")
    by_library: dict[str, float] = defaultdict(float)
    for path in d1.by_object.keys() | d2.by_object.keys():
        by_library[_library(path)] += (d2.by_object[path] - d1.by_object[path]) / (n2 - n1)
    shown = sorted(by_library.items(), key=lambda item: -item[1])[:8]
    rest = sum(by_library.values()) - sum(v for _, v in shown)
    for library, ir in [*shown, ("everything else", rest)]:
        print(f"| {library} | {ir / 1e3:,.0f} k | {ir / marginal:.1%} |")
    print()
    print("| calls per message | count |")
    print("|---|---|")
    for function, label in CALLS.items():
        per = (d2.calls[function] - d1.calls[function]) / (n2 - n1)
        print(f"| {label} | {per:.1f} |")
