"""Acme Pay's disputes bot: files card disputes and duplicate-charge claims, step by step.

``dispute_charge`` / ``duplicate_charge``: asks for the merchant, then the amount, then files
the claim with a reference like ``DSP-123456``. Amounts of $1,000 or more are filed and then
escalated to the ``agents`` provider with ``handoff.initiate``. ``dispute_status`` reports on
the conversation's latest claim (or the reference the user quotes). The flow lives in
ConversationState, so each midtier leg has its own.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import InputHints

from adapters.botside.handoff import create_handoff_initiation
from bots import AcmeBot, intent_of

HIGH_VALUE = Decimal(1000)
_AMOUNT = re.compile(r"\d[\d,]*(?:\.\d{1,2})?")
_REFERENCE = re.compile(r"\bDSP-\d{6}\b", re.IGNORECASE)
_CANCEL = re.compile(r"\b(cancel|stop|never ?mind)\b", re.IGNORECASE)
_STARTS = {"dispute_charge", "duplicate_charge"}

MENU = (
    "I handle card disputes: I can dispute a charge you don't recognise, report a charge "
    "taken twice, or check on a dispute. What would you like to do?"
)


def new_reference() -> str:
    """A dispute reference: ``DSP-`` and six digits."""
    return f"DSP-{secrets.randbelow(10**6):06d}"


def parse_amount(text: str) -> Decimal | None:
    """The first amount in the text ("$2,500", "42.50"), or None."""
    match = _AMOUNT.search(text)
    if match is None:
        return None
    try:
        amount = Decimal(match.group().replace(",", ""))
    except InvalidOperation:
        return None
    return amount if amount > 0 else None


class DisputesBot(AcmeBot):
    """A short multi-turn flow over ConversationState (kept with the leg, LegStorage)."""

    title = "the disputes assistant"
    topics = {
        "dispute_charge": "a charge you don't recognise",
        "duplicate_charge": "a charge that was taken twice",
        "dispute_status": "a dispute you've opened",
    }

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        state = await self.state(turn_context)
        text = (turn_context.activity.text or "").strip()
        intent = intent_of(turn_context)
        step = state.get("step")
        if step and _CANCEL.search(text):
            state["step"] = None
            await turn_context.send_activity("OK, I've stopped. Nothing was filed.")
        elif step == "merchant":
            state["merchant"] = text[:80]
            state["step"] = "amount"
            each = " each time" if state.get("kind") == "duplicate_charge" else ""
            await self._ask(turn_context, f"Thanks. How much was the charge{each}?")
        elif step == "amount":
            await self._amount(turn_context, state, text)
        elif intent in _STARTS:
            state.update(step="merchant", kind=intent, merchant=None)
            question = (
                "Which merchant charged you twice?"
                if intent == "duplicate_charge"
                else "I can help you dispute that. Which merchant is the charge from?"
            )
            await self._ask(turn_context, question)
        elif intent == "dispute_status":
            await turn_context.send_activity(self._status(state, text))
        else:
            await turn_context.send_activity(MENU)

    @staticmethod
    async def _ask(turn_context: TurnContext, question: str) -> None:
        # expectingInput tells midtier the next message answers this question.
        await turn_context.send_activity(question, input_hint=InputHints.expecting_input)

    async def _amount(self, turn_context: TurnContext, state: dict[str, Any], text: str) -> None:
        amount = parse_amount(text)
        if amount is None:
            await self._ask(turn_context, "Please give the amount as a number, e.g. 42.50.")
            return
        kind = state.get("kind") or "dispute_charge"
        merchant = state.get("merchant") or "the merchant"
        reference = new_reference()
        claim = {"reference": reference, "kind": kind, "merchant": merchant, "amount": str(amount)}
        state.setdefault("disputes", []).append(claim)
        state["step"] = None
        what = "a duplicate-charge claim" if kind == "duplicate_charge" else "a dispute"
        filed = (
            f"I've filed {what} for ${amount:,.2f} at {merchant}. Your reference is {reference}."
        )
        if amount >= HIGH_VALUE:
            await turn_context.send_activity(
                f"{filed} As it's over $1,000, a disputes specialist will take it from here."
            )
            handoff = create_handoff_initiation(
                turn_context,
                {"provider": "agents", "reason": "high-value dispute", "dispute": claim},
                [turn_context.activity],
            )
            await turn_context.send_activity(handoff)
        elif kind == "duplicate_charge":
            await turn_context.send_activity(
                f"{filed} Duplicate charges are usually reversed within 3-5 business days."
            )
        else:
            await turn_context.send_activity(
                f"{filed} We'll contact the merchant and update you within 10 business days."
            )

    @staticmethod
    def _status(state: dict[str, Any], text: str) -> str:
        quoted = _REFERENCE.search(text)
        if quoted:
            return (
                f"Dispute {quoted.group().upper()} is under review: we've asked the merchant "
                "for details and expect to update you within 10 business days."
            )
        disputes = state.get("disputes") or []
        if not disputes:
            return (
                "I can't see a dispute in this conversation. If you have a reference "
                "(it looks like DSP-123456), send it and I'll check."
            )
        last = disputes[-1]
        return (
            f"Your dispute {last['reference']} (${Decimal(last['amount']):,.2f} at "
            f"{last['merchant']}) is under review. We've contacted the merchant and expect "
            "an answer within 10 business days."
        )


__all__ = ["MENU", "DisputesBot", "new_reference", "parse_amount"]
