"""The routing playground's gate: the desk's tokens and signed sessions let a request in,
counted by the desk's own sign-in throttle."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.desk.playground import DeskGate
from adapters.desk.settings import AgentAccount, DeskSettings, SignInSettings
from adapters.desk.signin import DeskSignIn
from adapters.desk.throttle import SignInThrottle
from connector.errors import AuthError, Forbidden, TooManyAttempts

SHARED = "shared-desk-token-0123456789"
# A personal token may look like a signed session; it is still a token.
SESSION_LOOKING = "v1.personal.token-of-dana"


class Clock:
    """A clock a test moves forward by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def gate(tmp_path: Path, clock: Clock, max_failures: int = 3) -> tuple[DeskGate, SignInThrottle]:
    settings = DeskSettings(
        token=SHARED,
        agents={"dana": AgentAccount(name="Dana", token=SESSION_LOOKING)},
        sign_in=SignInSettings(session_ttl_s=60, max_failures=max_failures, delay_s=0),
    )
    signin = DeskSignIn(settings, clock=clock)
    signin.start(tmp_path)
    throttle = SignInThrottle(max_failures=max_failures, window_s=300, cooldown_s=300, delay_s=0)
    return DeskGate(signin, throttle), throttle


async def test_a_token_gets_a_session_that_lets_the_next_request_in_until_it_expires(
    tmp_path: Path,
) -> None:
    clock = Clock()
    door, throttle = gate(tmp_path, clock)
    session = await door.admit(SHARED, "10.0.0.1")
    assert session is not None and session.startswith("v1.") and SHARED not in session
    assert await door.admit(session, "10.0.0.1") is None  # a session buys no new one
    clock.now += 61
    for _ in range(3):  # as many as max_failures: an expired session is not a guess
        with pytest.raises(AuthError, match="expired") as refused:
            await door.admit(session, "10.0.0.1")
        assert not isinstance(refused.value, Forbidden)
    assert throttle.blocked("10.0.0.1") is None
    assert await door.admit(SHARED, "10.0.0.1") is not None


async def test_a_personal_token_that_looks_like_a_session_is_still_a_token(
    tmp_path: Path,
) -> None:
    door, _ = gate(tmp_path, Clock())
    assert (await door.admit(SESSION_LOOKING, "10.0.0.1") or "").startswith("v1.")


async def test_forged_sessions_and_wrong_tokens_count_until_even_the_right_token_is_refused(
    tmp_path: Path,
) -> None:
    door, _ = gate(tmp_path, Clock(), max_failures=3)
    with pytest.raises(AuthError, match="missing agent token"):
        await door.admit(None, "10.0.0.1")  # nothing tried: not counted
    for wrong in ("v1.e30.forged-signature", SHARED + "x", "wrong-token-0123456789"):
        with pytest.raises(AuthError, match="invalid agent token"):
            await door.admit(wrong, "10.0.0.1")
    with pytest.raises(TooManyAttempts) as blocked:
        await door.admit(SHARED, "10.0.0.1")
    assert blocked.value.retry_after == 300 and SHARED not in str(blocked.value)
    assert await door.admit(SHARED, "10.0.0.2") is not None  # another address is unaffected
