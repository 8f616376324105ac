"""Acme Pay's help bot: short answers to common questions, chosen by midtier's intent.

The intent comes from ``channelData.midtier.intent`` of each message. Asking for a human or
an agent sends a ``handoff.initiate`` event to the ``agents`` provider.
"""

from __future__ import annotations

import re

from botbuilder.core import TurnContext

from adapters.botside.handoff import create_handoff_initiation
from bots import AcmeBot, intent_of

_WANTS_PERSON = re.compile(r"\b(human|agent)s?\b", re.IGNORECASE)

ANSWERS: dict[str, str] = {
    "greet": (
        "Hello! I'm the Acme Pay help assistant. Ask me about your balance, refunds, cards, "
        "fees or transfers."
    ),
    "goodbye": "Goodbye, and thanks for using Acme Pay.",
    "thanks": "You're welcome! Anything else I can help with?",
    "check_balance": (
        "Your balance is on the Home tab of the Acme Pay app. Card payments still pending "
        "show under 'Pending' until the merchant settles them, usually within 2 days."
    ),
    "refund_status": (
        "Once a merchant issues a refund it reaches your Acme Pay balance within 3-5 business "
        "days. You can follow it under Activity > Refunds."
    ),
    "reset_password": (
        "Tap 'Forgot password' on the sign-in screen and we'll email you a reset link. "
        "The link works for 30 minutes."
    ),
    "activate_card": (
        "To activate your card, open the app, go to Cards, pick the new card and enter the "
        "3-digit code printed on the back."
    ),
    "update_address": (
        "You can change your address under Settings > Personal details. For some changes we "
        "ask for a proof of address, such as a recent utility bill."
    ),
    "fees": (
        "Sending money to friends in the same currency is free. Card payments in another "
        "currency cost 1.5%, and instant withdrawals to your bank cost 1% (at least $0.25)."
    ),
    "transfer_limits": (
        "Verified accounts can send up to $10,000 per transfer and $25,000 per month. "
        "Unverified accounts can send up to $1,000 per month."
    ),
    "payment_methods": (
        "You can pay with your Acme Pay balance, a linked bank account, or a debit or credit "
        "card. Manage them under Wallet."
    ),
    "account_statement": (
        "Monthly statements are under Activity > Statements. You can download any month as "
        "a PDF or CSV file."
    ),
}

NOT_UNDERSTOOD = (
    "Sorry, I didn't get that. I can help with your balance, refunds, resetting your "
    "password, activating a card, changing your address, fees, transfer limits, payment "
    "methods and statements. Or say 'agent' to talk to a person."
)


class FaqBot(AcmeBot):
    """Answers Acme Pay's frequent questions; hands over to a person when asked."""

    title = "the Acme Pay help assistant"
    topics = {
        "check_balance": "your balance",
        "refund_status": "a refund",
        "reset_password": "resetting your password",
        "activate_card": "activating your card",
        "update_address": "changing your address",
        "fees": "our fees",
        "transfer_limits": "transfer limits",
        "payment_methods": "ways to pay",
        "account_statement": "your statements",
    }

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = turn_context.activity.text or ""
        if _WANTS_PERSON.search(text):
            handoff = create_handoff_initiation(
                turn_context,
                {"provider": "agents", "reason": "user asked for a person"},
                [turn_context.activity],
            )
            await turn_context.send_activity(handoff)
            return
        intent = intent_of(turn_context)
        await turn_context.send_activity(ANSWERS.get(intent or "", NOT_UNDERSTOOD))


__all__ = ["ANSWERS", "NOT_UNDERSTOOD", "FaqBot"]
