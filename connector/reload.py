"""Hot reload: ``midtier reload`` (or SIGHUP) swaps routing and the intent classifier of a
running server without dropping sessions or in-flight messages.

The server re-reads its config directory and validates it as at start-up. A config that
fails is refused with its errors, and the running one stays. Otherwise the classifier is
trained or loaded off the event loop (messages keep flowing on the old one meanwhile), and
then, in one synchronous step, the router takes the new ``routing.yaml``, the new classifier
replaces the old, and the circuit settings change. A message being processed finishes on
whatever it had already read; the next one sees only the new. What else changed
(providers, channels, ``midtier.yaml``) is not applied: the outcome says to restart for it.

The outcome goes to the log and to ``<data>/reload.json`` (``seq``, ``ok``, ``at``,
``errors``, ``applied``, ``not_applied``), which ``midtier reload`` waits for. The server's
process id is in ``<data>/midtier.pid`` while it runs, which is how the command finds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector.activity import now
from connector.config import Config, load_config
from connector.errors import ConfigErrors
from connector.files import replacing_text
from connector.hosting import Understanding
from connector.interfaces import IntentClassifier
from connector.pool import ProviderPool
from connector.routing.config import RoutingConfig
from connector.routing.policy import Router

log = logging.getLogger("midtier.reload")

PID_FILE = "midtier.pid"
STATUS_FILE = "reload.json"
Train = Callable[[RoutingConfig, list[Path], Path], tuple[IntentClassifier, bool]]


class Reloader:
    """Re-reads the config of a running server and swaps what can be swapped live."""

    def __init__(
        self,
        config: Config,
        router: Router,
        understanding: Understanding,
        pool: ProviderPool,
        data_dir: Path,
        train: Train,
    ) -> None:
        self._config = config
        self._router = router
        self._understanding = understanding
        self._pool = pool
        self._data = data_dir
        self._train = train
        self._lock = asyncio.Lock()  # one reload at a time; a second SIGHUP waits its turn
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()
        self.seq = _last_seq(data_dir / STATUS_FILE)

    async def reload(self) -> dict[str, Any]:
        """Reload once; the outcome, also written to ``reload.json`` and logged."""
        async with self._lock:
            try:
                outcome = await self._reload()
            except Exception as exc:  # e.g. the NLU cache directory cannot be written
                log.exception("reload failed")
                outcome = {"ok": False, "errors": [f"reload failed: {type(exc).__name__}"]}
            self.seq += 1
            outcome = {"seq": self.seq, "at": now().isoformat(), **outcome}
            _write_json(self._data / STATUS_FILE, outcome)
            if outcome["ok"]:
                log.info("reloaded: %s", ", ".join(outcome["applied"]) or "nothing changed")
            else:
                log.warning("reload refused: %s", "; ".join(outcome["errors"]))
            return outcome

    async def _reload(self) -> dict[str, Any]:
        running = self._config
        try:
            new = await asyncio.to_thread(load_config, running.dir)
        except ConfigErrors as exc:
            return {"ok": False, "errors": [str(e) for e in exc.errors]}
        missing = sorted({*new.routing.routes, new.routing.fallback} - set(running.providers))
        if new.routing.default is not None and new.routing.default not in running.providers:
            missing.append(new.routing.default)
        if missing:
            names = ", ".join(sorted(set(missing)))
            return {
                "ok": False,
                "errors": [f"routing.yaml: routes to providers this server does not run: "
                           f"{names} (restart midtier to add providers)"],
            }  # fmt: skip
        try:
            classifier, trained = await asyncio.to_thread(
                self._train, new.routing, new.nlu_files, self._data / "nlu-cache"
            )
        except ConfigErrors as exc:  # bad NLU data, a tier whose extra is missing
            return {"ok": False, "errors": [str(e) for e in exc.errors]}
        applied = []
        if new.routing != running.routing:
            applied.append("routing.yaml")
        same_files = [p.resolve() for p in new.nlu_files] == [
            p.resolve() for p in running.nlu_files
        ]  # the running config may name them relative to the working directory
        if trained or not same_files or new.routing.nlu != running.routing.nlu:
            applied.append("intent classifier " + ("retrained" if trained else "from cache"))
        # From here to the return: no await, so no message sees half of the change.
        self._router.reconfigure(new.routing)
        self._understanding.swap(classifier)
        self._pool.breakers.failures = new.routing.circuit.failures
        self._pool.breakers.cooldown_s = new.routing.circuit.cooldown_s
        running.routing, running.nlu_files = new.routing, new.nlu_files
        not_applied = [
            name
            for name, old, fresh in (
                ("providers.yaml", running.providers, new.providers),
                ("midtier.yaml", running.midtier, new.midtier),
            )
            if old != fresh
        ]
        if not_applied:
            log.warning("reload: %s changed; restart midtier to apply", ", ".join(not_applied))
        return {"ok": True, "errors": [], "applied": applied, "not_applied": not_applied}

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload on SIGHUP, and write the pid file that ``midtier reload`` signals."""
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_signal)
        except (RuntimeError, ValueError, NotImplementedError) as exc:  # not the main thread
            log.warning("no reload on SIGHUP in this process: %s", exc)
            return
        _write_text(self._data / PID_FILE, f"{os.getpid()}\n")

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.remove_signal_handler(signal.SIGHUP):
            (self._data / PID_FILE).unlink(missing_ok=True)

    def _on_signal(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="midtier-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _last_seq(path: Path) -> int:
    try:
        seq = json.loads(path.read_text()).get("seq", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return seq if isinstance(seq, int) else 0


def _write_json(path: Path, value: dict[str, Any]) -> None:
    _write_text(path, json.dumps(value, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    with replacing_text(path) as f:
        f.write(text)
