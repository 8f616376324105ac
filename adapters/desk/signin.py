"""How an agent signs in to the desk, and proves it is the same agent when the page reconnects.

Two ways in, chosen by what the ``auth`` frame carries:

- a **personal token** (``agents.<id>.token`` in providers.yaml): the agent is ``<id>``, with
  the name set there;
- the **shared desk token** plus a name: the agent gets a new id (``agent_`` + random).

Either way the answer carries a **signed session** (HMAC-SHA256 under a key kept in
``<data>/agent-session-key``) naming the agent id, the name and an expiry. The page keeps it
and presents it instead of a token when it reconnects; the agent id comes only from a
personal token or from a session whose signature holds, never from the client. A session also
carries a fingerprint of the token it was issued for, so changing that token (or removing
the agent from config) ends its sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.desk.settings import DeskSettings
from adapters.local_secrets import read_or_create_secret
from connector.errors import AuthError, InputError
from connector.logs import redactor
from connector.sessions import new_id

log = logging.getLogger("midtier.agent_desk")

TOKEN_FILE = "agent-token"
KEY_FILE = "agent-session-key"
MAX_SESSION_CHARS = 2048
NAME_CHARS = 60


class SignInRefused(AuthError):
    """Wrong or missing token, or a session that is forged or no longer valid."""

    code = "unauthorized"


class SessionExpired(SignInRefused):
    """A genuine session past its expiry: sign in again (not counted as a guess)."""

    code = "session_expired"


class NameReserved(InputError):
    """A shared-token sign-in asked for the name of an agent with a personal token."""

    code = "name_taken"


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who is signed in on one socket."""

    id: str
    name: str
    expires_at: int  # unix seconds
    session: str  # the signed session the page keeps


def clean_name(value: object) -> str:
    """A display name customers can be shown: printable, single-spaced, at most 60 chars."""
    text = value if isinstance(value, str) else ""
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return " ".join(text.split())[:NAME_CHARS] or "Agent"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bytes(text: str) -> bytes:
    # A lone surrogate must not raise: such a token is simply wrong.
    return text.encode("utf-8", "surrogatepass")


class DeskSignIn:
    """Checks tokens and sessions; issues sessions. ``start`` loads the secrets from disk."""

    def __init__(self, settings: DeskSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._agents = settings.agents
        self._shared = settings.token
        self._key = b""
        self.clock = clock

    @property
    def shared_token(self) -> str:
        return self._shared

    def start(self, data_dir: Path) -> None:
        """Load (or create, once) the shared token and the session key in ``data_dir``."""
        if self._settings.shared_signin and not self._shared:
            path = data_dir / TOKEN_FILE
            self._shared, created = read_or_create_secret(path, lambda: secrets.token_urlsafe(24))
            if created:
                log.info("agent desk token generated and written to %s", path)
        key, _ = read_or_create_secret(data_dir / KEY_FILE, lambda: secrets.token_hex(32))
        self._key = key.encode()
        redactor.add(self._shared)
        for account in self._agents.values():
            redactor.add(account.token)

    # ------------------------------------------------------------------ sign-in

    def sign_in(self, frame: dict[str, Any]) -> AgentIdentity:
        """The agent an ``auth`` frame proves; raises SignInRefused / NameReserved."""
        session, token = frame.get("session"), frame.get("token")
        if isinstance(session, str) and session:
            return self._resume(session)
        if isinstance(token, str) and token:
            return self._by_token(token, frame.get("agent"))
        raise SignInRefused("invalid or missing agent token")

    def bearer(self, credential: str, name: str) -> AgentIdentity:
        """The agent an HTTP ``Authorization: Bearer`` credential proves: a signed session,
        or a token (a personal one, or the shared one under ``name``); raises as
        ``sign_in`` does."""
        if credential.startswith("v1."):
            try:
                return self._resume(credential)
            except SessionExpired:
                raise
            except SignInRefused:
                pass  # a personal token may happen to look like a session
        return self._by_token(credential, {"name": name})

    def _by_token(self, token: str, agent: object) -> AgentIdentity:
        given = _bytes(token)
        found = None
        for agent_id, account in self._agents.items():  # compare with every one: no shortcut
            if hmac.compare_digest(given, _bytes(account.token)):
                found = agent_id
        if found is not None:
            account = self._agents[found]
            return self._issue(found, account.name, account.token)
        if self._settings.shared_signin and hmac.compare_digest(given, _bytes(self._shared)):
            name = clean_name(agent.get("name") if isinstance(agent, dict) else None)
            reserved = {a.name.casefold() for a in self._agents.values()}
            if name.casefold() in reserved:
                raise NameReserved(f"the name {name!r} belongs to an agent; choose another")
            return self._issue(new_id("agent"), name, self._shared)
        raise SignInRefused("invalid or missing agent token")

    # ------------------------------------------------------------------ sessions

    def _credential(self, agent_id: str) -> str | None:
        """The token sessions of ``agent_id`` were issued for (None: none can be valid)."""
        account = self._agents.get(agent_id)
        if account is not None:
            return account.token
        if self._settings.shared_signin and agent_id.startswith("agent_"):
            return self._shared
        return None

    def _fingerprint(self, credential: str) -> str:
        return hmac.new(self._key, b"cred\0" + _bytes(credential), hashlib.sha256).hexdigest()[:32]

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, _bytes(body), hashlib.sha256).digest())

    def _issue(self, agent_id: str, name: str, credential: str) -> AgentIdentity:
        expires = int(self.clock() + self._settings.sign_in.session_ttl_s)
        claims = {
            "sub": agent_id,
            "name": name,
            "exp": expires,
            "cred": self._fingerprint(credential),
        }
        body = "v1." + _b64(json.dumps(claims, separators=(",", ":")).encode())
        return AgentIdentity(agent_id, name, expires, f"{body}.{self._mac(body)}")

    def _resume(self, session: str) -> AgentIdentity:
        refused = SignInRefused("invalid agent session; sign in again")
        version, _, rest = session.partition(".")
        payload, _, mac = rest.partition(".")
        if version != "v1" or not payload or not mac or len(session) > MAX_SESSION_CHARS:
            raise refused
        # The signature is checked before anything in the payload is read.
        if not hmac.compare_digest(_bytes(mac), self._mac(f"v1.{payload}").encode()):
            raise refused
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error) as exc:
            raise refused from exc
        if not isinstance(claims, dict):
            raise refused
        agent_id, name, expires = claims.get("sub"), claims.get("name"), claims.get("exp")
        if (
            not isinstance(agent_id, str)
            or not isinstance(name, str)
            or not isinstance(expires, int)
        ):
            raise refused
        credential = self._credential(agent_id)
        if credential is None or not hmac.compare_digest(
            str(claims.get("cred", "")).encode(), self._fingerprint(credential).encode()
        ):
            raise refused
        if expires <= self.clock():
            raise SessionExpired("your desk session expired; sign in again")
        account = self._agents.get(agent_id)
        return AgentIdentity(agent_id, account.name if account else name, expires, session)
