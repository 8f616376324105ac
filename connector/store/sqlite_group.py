"""A group commit's units, run in one SQLite transaction (for ``sqlite_db.Database``).

Each unit is a function of the connection, its caller's future, and whether it runs a single
statement. No savepoint surrounds a unit (two more statements each): a unit that raises is
kept aside, and the transaction is rolled back and run again without it, so a group with k
failures runs k + 1 times (a failure is rare: a conflict, a repeat). A single statement that
fails is undone by SQLite alone and needs no second run, unless SQLite gave up the
transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

# A unit (its function, its caller's future, whether it is one statement), and what came of
# it (the future, the result, the error).
Unit = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", bool]
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def run_group(conn: sqlite3.Connection, group: list[Unit]) -> list[Outcome]:
    """Run the units in one transaction and commit it; each unit's result or error. An
    ``sqlite3.Error`` of BEGIN or COMMIT (the disk) is raised, the transaction left open."""
    failed: dict[int, BaseException] = {}
    while True:
        results: list[Any] = [None] * len(group)
        conn.execute("BEGIN IMMEDIATE")
        for i, (fn, _, one) in enumerate(group):
            if i in failed:
                continue
            try:
                results[i] = fn(conn)
            except Exception as exc:  # this unit only: the others go on
                failed[i] = exc
                if not one or not conn.in_transaction:
                    break
        else:
            conn.execute("COMMIT")
            return [(done, results[i], failed.get(i)) for i, (_, done, _) in enumerate(group)]
        if conn.in_transaction:
            conn.execute("ROLLBACK")
