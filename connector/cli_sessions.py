"""``midtier sessions list | show``: what the session map holds, read straight from the
store (the server may be running): sessions, the legs of every channel, delivery failures,
replies still waiting in the outbox, and the transcript."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from connector.cli_args import store_file
from connector.interfaces import OutboxEntry, SessionStore
from connector.sessions import MidTierSession

LIST_ALL = 1_000_000  # sessions read to filter on what the store cannot (``--failed``)
_HEAD_FIELDS = {"id", "channel", "attempts", "next_attempt_at", "last_error"}


async def _open_store(data: str) -> SessionStore:
    from connector.store import open_store

    store = open_store(str(store_file(data)))
    await store.start()
    return store


async def sessions(args: argparse.Namespace) -> int:
    try:
        store = await _open_store(args.data)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "list":
            found = await store.list_sessions(
                status=args.status,
                provider=args.provider,
                limit=LIST_ALL if args.failed else args.limit,
            )
            if args.failed:
                found = [s for s in found if s.delivery_failures][: max(args.limit, 0)]
            _print_list(found, as_json=args.json)
            return 0
        session = await store.get(args.id)
        if session is None:
            print(f"error: no session {args.id!r}", file=sys.stderr)
            return 1
        transcript = await store.transcript(session.id)
        decisions = await store.decisions(session.id)
        waiting = await _waiting(store, session)
        detail: dict[str, Any] = {
            "session": session.model_dump(mode="json"),
            "current_provider": session.current_provider,
            "outbox_waiting": len(waiting),
            # The oldest waiting reply: the one the others wait behind, and why.
            "outbox_oldest": (
                waiting[0].model_dump(mode="json", include=_HEAD_FIELDS) if waiting else None
            ),
            "transcript": [e.model_dump(mode="json", exclude={"activity"}) for e in transcript],
            "decisions": [d.model_dump(mode="json") for d in decisions],
        }
        if args.json:
            print(json.dumps(detail, indent=2))
        else:
            _print_detail(session, detail)
        return 0
    finally:
        await store.close()


async def _waiting(store: SessionStore, session: MidTierSession) -> list[OutboxEntry]:
    """The session's replies still in the outbox, on every channel conversation it has used."""
    keys = {(session.channel, session.channel_conversation_id)}
    keys |= {(leg.channel, leg.channel_conversation_id) for leg in session.legs}
    found = [e for key in sorted(keys) for e in await store.outbox_pending(*key)]
    return sorted((e for e in found if e.session_id == session.id), key=lambda e: e.created_at)


def _print_list(sessions: list[MidTierSession], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([_summary(s) for s in sessions], indent=2))
        return
    print(f"{'id':<36} {'status':<7} {'provider':<12} {'legs':>4} {'updated':<20} user")
    for s in sessions:
        print(
            f"{s.id:<36} {s.status:<7} {s.current_provider or '-':<12} {len(s.legs):>4} "
            f"{s.updated_at:%Y-%m-%d %H:%M:%S}  {s.user_id}"
        )
    print(f"{len(sessions)} session(s)")


def _summary(s: MidTierSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": s.status,
        "user_id": s.user_id,
        "channel": s.channel,
        "channel_conversation_id": s.channel_conversation_id,
        "current_provider": s.current_provider,
        "legs": len(s.legs),
        "delivery_failures": len(s.delivery_failures),
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
    }


def _print_detail(session: MidTierSession, detail: dict[str, Any]) -> None:
    print(f"session   {session.id}  ({session.status})")
    print(f"user      {session.user_id}")
    print(f"channel   {session.channel} / {session.channel_conversation_id}")
    print(f"provider  {session.current_provider or '-'}")
    head = detail["outbox_oldest"]
    why = ""
    if head is not None:
        why = f"; oldest tried {head['attempts']}x, next {head['next_attempt_at'][:19]}"
        why += f": {head['last_error']}" if head["last_error"] else ""
    print(f"outbox    {detail['outbox_waiting']} waiting{why}")
    print("\nlegs:")
    for leg in session.legs:
        closed = (
            f"closed {leg.closed_at:%Y-%m-%d %H:%M:%S} ({leg.close_reason})"
            if leg.closed_at
            else "open"
        )
        opened = f"{leg.opened_at:%Y-%m-%d %H:%M:%S}"
        print(f"  {opened}  {leg.provider:<12} {leg.provider_conversation_id}")
        print(f"      on {leg.channel} / {leg.channel_conversation_id}")
        print(f"      opened: {leg.open_reason or '-'}; {closed}")
    print("\ndelivery failures:")
    for f in session.delivery_failures:
        tries = f"{f.attempts} tr{'y' if f.attempts == 1 else 'ies'}"
        outcome = f.outcome.replace("_", " ")
        print(f"  {f.at:%Y-%m-%d %H:%M:%S}  {f.channel:<10} {outcome} after {tries}: {f.reason}")
        print(f"      {f.activity_id}  {f.excerpt or ''}")
    if not session.delivery_failures:
        print("  none")
    print("\ntranscript:")
    for e in detail["transcript"]:
        who = e["speaker"] + (f" ({e['provider']})" if e.get("provider") else "")
        print(f"  #{e['seq']:<4} {e['at'][11:19]}  {who:<22} {e.get('text') or ''}")
    print("\nroute decisions:")
    for d in detail["decisions"]:
        intent = f"{d['intent']} {d['confidence']:.2f}" if d.get("intent") else "-"
        target = d["provider"] or "-"
        why = d["reason"] if not d.get("summary") else f"{d['summary']} ({d['reason']})"
        print(f"  {d['at'][11:19]}  {d['action']:<8} -> {target:<10} [{intent}] {why}")


__all__ = ["sessions"]
