"""scripts/apt-lock.sh: setup waits for apt's and dpkg's locks instead of failing.

The lock is a real POSIX lock on a file (what apt and dpkg take), held by this test
process; the script runs in a real bash, as setup.sh runs it.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.server import REPO

SCRIPT = REPO / "scripts" / "apt-lock.sh"


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold a write lock on ``path`` the way apt does (fcntl), until the block ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _bash(script: str, lock: Path, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "MIDTIER_APT_LOCKS": str(lock),
        "MIDTIER_APT_LOCK_POLL_S": "1",
        **env,
    }
    return subprocess.Popen(
        ["bash", "-c", f"set -euo pipefail; source {SCRIPT}; {script}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def test_waits_with_a_progress_line_while_the_lock_is_held(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    with held(lock):
        proc = _bash("apt_run echo ran", lock)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the script says it is waiting
        assert line.startswith("==> waiting for another apt-get or dpkg to finish: ")
        assert f"{lock} (process {os.getpid()}: " in line
        assert proc.poll() is None  # still waiting: the command has not run
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (0, "ran\n", "")


def test_a_lock_lost_to_a_race_is_waited_for_and_retried(tmp_path: Path) -> None:
    """The locks were free when looked at, but apt-get found one taken a moment later."""
    lock, tries, free = tmp_path / "lock", tmp_path / "tries", tmp_path / "free"
    fake_apt = tmp_path / "apt-get"
    fake_apt.write_text(
        "#!/usr/bin/env bash\n"
        f"echo try >> {tries}\n"
        f"[ -e {free} ] && {{ echo installed; exit 0; }}\n"
        "echo 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 7 (apt-get)'"
        " >&2\n"
        "exit 100\n"
    )
    fake_apt.chmod(0o755)
    proc = _bash(f"apt_run {fake_apt}", lock)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("==> waiting for another apt-get or dpkg to finish: E: Could not get")
    free.touch()
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (0, "installed\n", "")
    assert len(tries.read_text().split()) >= 2


def test_other_failures_are_not_waited_for(tmp_path: Path) -> None:
    proc = _bash("apt_run bash -c 'echo E: Unable to locate package nope >&2; exit 100'", tmp_path)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (100, "")
    assert err == "E: Unable to locate package nope\n"


def test_gives_up_after_the_configured_wait(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with held(lock):
        proc = _bash("apt_run echo ran", lock, MIDTIER_APT_LOCK_WAIT_S="1")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "ran" not in out
    assert re.match(rf"gave up after \d+s: {re.escape(str(lock))} \(process {os.getpid()}: ", err)
