"""What the Slack channel sends (``chat.postMessage`` to a fake Slack Web API on 127.0.0.1),
checked against slack_sdk: its Block Kit classes accept our blocks, and its own client makes
the same call; and how Slack's answers become the outbox's retry or give-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ImageBlock, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient
from support.channel_kits.slack import SECRET, TOKEN, SlackKit, adapter, unescape
from support.fake_platform import FakePlatform, fake_platform

from adapters.channels.slack import SlackChannel
from connector.activity import Activity, Attachment, ConversationAccount
from connector.context import SharedHttp
from connector.errors import ChannelError, DeliveryRejected
from connector.logs import redactor

DM = "T061EG9R6:D024BE91L"
THREAD = "T123ABC456:C123ABC456:1355517523.000005"
CARD = "application/vnd.microsoft.card.hero"


@pytest.fixture
async def api() -> AsyncIterator[FakePlatform]:
    async with fake_platform() as platform:
        SlackKit().prepare(platform)  # answers chat.postMessage as Slack documents it
        yield platform


@pytest.fixture
async def slack(api: FakePlatform) -> AsyncIterator[SlackChannel]:
    http = SharedHttp()
    async with aiohttp.ClientSession() as session:
        http.open(session)
        yield adapter(http, api_base=api.base_url)


def reply(text: str = "", conversation: str = DM, **fields: Any) -> Activity:
    return Activity(
        type="message", text=text, conversation=ConversationAccount(id=conversation), **fields
    )


def choices(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"actions": [{"type": "imBack", "title": t, "value": v} for t, v in pairs]}


def sent(api: FakePlatform) -> dict[str, Any]:
    [call] = api.to("/chat.postMessage")
    body: dict[str, Any] = call.json
    return body


def blocks_of(body: dict[str, Any]) -> list[Block]:
    """Our blocks as slack_sdk reads them; each must pass its validation and mean the same."""
    parsed = [Block.parse(b) for b in body["blocks"]]
    for ours, theirs in zip(body["blocks"], parsed, strict=True):
        assert theirs is not None
        theirs.validate_json()
        assert theirs.to_dict() == ours
    return [b for b in parsed if b is not None]


async def test_text_goes_out_by_chat_post_message_with_the_bot_token(
    slack: SlackChannel, api: FakePlatform
) -> None:
    ts = await slack.send(reply("Your balance is $12.50"))
    [call] = api.to("/chat.postMessage")
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.headers["Content-Type"] == "application/json; charset=utf-8"
    assert call.json == {"channel": "D024BE91L", "text": "Your balance is $12.50"}
    assert ts and ts.count(".") == 1  # Slack's ts of the posted message


async def test_a_reply_to_a_thread_goes_into_the_thread(
    slack: SlackChannel, api: FakePlatform
) -> None:
    await slack.send(reply("In the thread", THREAD))
    body = sent(api)
    assert (body["channel"], body["thread_ts"]) == ("C123ABC456", "1355517523.000005")


async def test_text_is_escaped_so_that_nobody_can_notify_the_whole_channel(
    slack: SlackChannel, api: FakePlatform
) -> None:
    await slack.send(reply("Hey <!channel> & <@U123>: 1 < 2"))
    assert sent(api)["text"] == "Hey &lt;!channel&gt; &amp; &lt;@U123&gt;: 1 &lt; 2"


async def test_long_text_is_cut_to_slacks_limit(slack: SlackChannel, api: FakePlatform) -> None:
    await slack.send(reply("x" * 50_000))
    text = sent(api)["text"]
    assert len(text) == 40_000 and text.endswith("…")


async def test_choices_are_buttons_in_blocks_that_slack_sdk_accepts(
    slack: SlackChannel, api: FakePlatform
) -> None:
    offer = choices(("Debit card", "card_debit"), ("Credit card", "card_credit"))
    await slack.send(reply("Which card?", suggested_actions=offer))
    body = sent(api)
    assert body["text"] == "Which card?"  # the notification and the fallback
    section, actions = blocks_of(body)
    assert isinstance(section, SectionBlock) and section.text is not None
    assert section.text.text == "Which card?"
    assert isinstance(actions, ActionsBlock)
    buttons = actions.elements
    assert all(isinstance(b, ButtonElement) for b in buttons)
    assert [(b.text.text, b.value) for b in buttons if isinstance(b, ButtonElement) and b.text] == [
        ("Debit card", "card_debit"),
        ("Credit card", "card_credit"),
    ]


async def test_a_hero_cards_buttons_are_buttons_too(slack: SlackChannel, api: FakePlatform) -> None:
    card = Attachment(
        content_type=CARD,
        content={"title": "Refunds", "buttons": [{"type": "imBack", "title": "Yes", "value": "y"}]},
    )
    await slack.send(reply(attachments=[card]))
    body = sent(api)
    assert body["text"] == "Refunds"
    assert [b.type for b in blocks_of(body)] == ["section", "actions"]


async def test_button_titles_are_cut_to_75_characters(
    slack: SlackChannel, api: FakePlatform
) -> None:
    await slack.send(reply("Pick", suggested_actions=choices(("t" * 200, "v"))))
    [_, actions] = blocks_of(sent(api))
    [button] = actions.to_dict()["elements"]
    assert len(button["text"]["text"]) == 75


async def test_choices_buttons_cannot_carry_are_numbered_in_the_text(
    slack: SlackChannel, api: FakePlatform
) -> None:
    offer = choices(("Short", "a"), ("Long", "v" * 2_001))  # over a button's value limit
    await slack.send(reply("Which one?", suggested_actions=offer))
    assert sent(api) == {"channel": "D024BE91L", "text": "Which one?\n1. Short\n2. Long"}


async def test_choices_without_text_still_have_a_fallback(
    slack: SlackChannel, api: FakePlatform
) -> None:
    await slack.send(reply(suggested_actions=choices(("Yes", "y"), ("No", "n"))))
    body = sent(api)
    assert body["text"] == "1. Yes\n2. No"
    assert [b.type for b in blocks_of(body)] == ["actions"]


async def test_long_text_with_choices_is_split_into_sections_slack_accepts(
    slack: SlackChannel, api: FakePlatform
) -> None:
    text = " ".join(["fees & charges"] * 700)  # 10,499 characters, more once escaped
    await slack.send(reply(text, suggested_actions=choices(("OK", "ok"))))
    *sections, _ = blocks_of(sent(api))
    parts = [s.to_dict()["text"]["text"] for s in sections]
    assert len(parts) > 3 and all(len(p) <= 3_000 for p in parts)
    assert unescape("".join(parts)) == text


async def test_images_are_image_blocks_with_alt_text(
    slack: SlackChannel, api: FakePlatform
) -> None:
    chart = Attachment(content_type="image/png", content_url="https://cdn.example.com/c.png")
    named = Attachment(
        content_type="image/jpeg", content_url="https://cdn.example.com/r.jpg", name="Receipt"
    )
    await slack.send(reply("Your receipts", attachments=[chart, named]))
    body = sent(api)
    kinds = [b.type for b in blocks_of(body)]
    assert kinds == ["section", "image", "image"]
    images = blocks_of(body)[1:]
    assert all(isinstance(i, ImageBlock) for i in images)
    assert [(i.image_url, i.alt_text) for i in images if isinstance(i, ImageBlock)] == [
        ("https://cdn.example.com/c.png", "image"),
        ("https://cdn.example.com/r.jpg", "Receipt"),
    ]
    assert body["text"] == "Your receipts"


async def test_typing_and_empty_messages_make_no_call(
    slack: SlackChannel, api: FakePlatform
) -> None:
    typing = Activity(type="typing", conversation=ConversationAccount(id=DM))
    assert await slack.send(typing) == ""  # Slack has no typing indicator for Events API bots
    assert await slack.send(reply("")) == ""
    assert api.calls == []


async def test_we_make_the_call_slack_sdks_own_client_makes(
    slack: SlackChannel, api: FakePlatform
) -> None:
    offer = choices(("Debit card", "card_debit"))
    await slack.send(reply("Which card?", THREAD, suggested_actions=offer))
    ours = sent(api)
    client = AsyncWebClient(token=TOKEN, base_url=api.base_url + "/")
    await client.chat_postMessage(
        channel=ours["channel"],
        text=ours["text"],
        blocks=ours["blocks"],
        thread_ts=ours["thread_ts"],
    )
    mine, theirs = api.to("/chat.postMessage")
    assert theirs.json == mine.json
    assert theirs.headers["Authorization"] == mine.headers["Authorization"]
    assert theirs.headers["Content-Type"].replace(" ", "") == mine.headers["Content-Type"].replace(
        " ", ""
    )


# ---------------------------------------------------------------------- errors


async def test_a_429_is_retried_after_slacks_retry_after(
    slack: SlackChannel, api: FakePlatform
) -> None:
    api.fail_next(
        status=429, body={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "7"}
    )
    with pytest.raises(ChannelError) as raised:
        await slack.send(reply("hi"))
    assert not isinstance(raised.value, DeliveryRejected)
    assert raised.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_is_retried(slack: SlackChannel, api: FakePlatform, status: int) -> None:
    api.fail_next(status=status)
    with pytest.raises(ChannelError) as raised:
        await slack.send(reply("hi"))
    assert not isinstance(raised.value, DeliveryRejected)


def _answer(api: FakePlatform, body: Any) -> None:
    api.route("POST", "/chat.postMessage", lambda _call: body)


@pytest.mark.parametrize(
    "error",
    ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"],
)
async def test_slacks_own_trouble_is_retried(
    slack: SlackChannel, api: FakePlatform, error: str
) -> None:
    _answer(api, {"ok": False, "error": error})
    with pytest.raises(ChannelError, match=error) as raised:
        await slack.send(reply("hi"))
    assert not isinstance(raised.value, DeliveryRejected)


@pytest.mark.parametrize(
    "error",
    [
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "user_not_found",
        "restricted_action",
        "too_many_attachments",  # chat_postMessage_error.json; any other error too
    ],
)
async def test_what_slack_refuses_for_good_is_rejected_without_the_token(
    slack: SlackChannel, api: FakePlatform, error: str
) -> None:
    _answer(api, {"ok": False, "error": error})
    with pytest.raises(DeliveryRejected, match=error) as raised:
        await slack.send(reply("hi"))
    assert TOKEN not in str(raised.value)


async def test_an_answer_that_is_not_slacks_is_retried(
    slack: SlackChannel, api: FakePlatform
) -> None:
    _answer(api, ["not", "an", "object"])
    with pytest.raises(ChannelError) as raised:
        await slack.send(reply("hi"))
    assert not isinstance(raised.value, DeliveryRejected)


async def test_a_conversation_that_is_not_slacks_is_rejected_without_a_call(
    slack: SlackChannel, api: FakePlatform
) -> None:
    with pytest.raises(DeliveryRejected):
        await slack.send(reply("hi", "wc_not-slack"))
    assert api.calls == []


async def test_once_started_the_secrets_are_blanked_in_logs(slack: SlackChannel) -> None:
    await slack.start()
    line = redactor.redact(f"Authorization: Bearer {TOKEN}; signing with {SECRET}")
    assert TOKEN not in line and SECRET not in line
