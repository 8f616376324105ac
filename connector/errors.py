"""The exception tree of midtier.

Adapters translate library errors at their boundary (``raise ... from exc``); only the HTTP
layer (``connector.app``) maps these to status codes::

    MidtierError
    ├── ConfigError                 bad bot_configs: carries file and key        (start-up)
    ├── InputError                  a request we cannot accept                   -> 400
    │   ├── MalformedPayload        body is not what the protocol says           -> 400
    │   │   └── UnsupportedMediaType  a Content-Type or charset we do not read   -> 415
    │   └── PayloadTooLarge         body over the size limit                     -> 413
    ├── AuthError                   caller not authenticated                     -> 401
    │   └── Forbidden               authenticated but not allowed                -> 403
    │       └── TooManyAttempts     refused for a while after wrong credentials  -> 403
    ├── NotFound                    unknown session / conversation / leg         -> 404
    │   └── SessionClosed           the session or leg exists but is closed      -> 409
    ├── ConflictError               optimistic version check lost                -> 409
    ├── AuthCodeError               authorization code unusable (used, expired,
    │                               bound to someone else)              -> 400 invalid_grant
    ├── ProviderError               a provider failed to open / deliver / close  -> fallback
    │   └── ProviderTimeout         ... within its time limit
    ├── ChannelError                a channel could not send (429, 5xx, timeout) -> outbox retry
    │   ├── ChannelUnavailable      nobody is listening right now (retry later)
    │   └── DeliveryRejected        the platform refused for good (blocked, outside
    │                               its messaging window): recorded, not retried
    └── NoProviderAvailable         no candidate could take the conversation     -> plain notice
"""

from __future__ import annotations


class MidtierError(Exception):
    """Base of every error midtier raises on purpose."""


class ConfigError(MidtierError):
    """A configuration problem, naming the file and the key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")


class ConfigErrors(MidtierError):
    """Several configuration problems found in one pass (``midtier check`` prints them all)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class InputError(MidtierError):
    """A request midtier cannot accept."""


class MalformedPayload(InputError):
    """The body is not what the protocol expects."""


class UnsupportedMediaType(MalformedPayload):
    """The body comes in a media type or charset midtier does not read."""


class PayloadTooLarge(InputError):
    """The body is over the configured size limit."""


class AuthError(MidtierError):
    """The caller could not be authenticated."""


class Forbidden(AuthError):
    """The caller is authenticated but not allowed to do this."""


class TooManyAttempts(Forbidden):
    """Too many wrong credentials from this address: refused, even with the right one, for
    ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class NotFound(MidtierError):
    """An unknown session, conversation or leg."""


class SessionClosed(NotFound):
    """The session or leg exists but has been closed."""


class ConflictError(MidtierError):
    """An update lost an optimistic version check."""


class RepeatedMessage(MidtierError):
    """A unit of work carried a dedupe key that is recorded already: nothing was written."""


class AuthCodeError(MidtierError):
    """An authorization code that cannot be redeemed (unknown, used, expired, wrong provider)."""


class ProviderError(MidtierError):
    """A provider failed to open a leg, deliver a message or close a leg."""

    def __init__(self, provider: str, message: str) -> None:
        self.provider = provider
        super().__init__(f"provider {provider!r}: {message}")


class ProviderTimeout(ProviderError):
    """A provider did not answer within its time limit."""


class ChannelError(MidtierError):
    """A channel could not send an activity now; the outbox tries again later.

    ``retry_after`` is the wait the platform asked for (``Retry-After``, Telegram's
    ``retry_after``), in seconds; None lets the outbox choose its backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ChannelUnavailable(ChannelError):
    """Nobody is connected on the channel side right now; the outbox retries later."""


class DeliveryRejected(ChannelError):
    """The platform refused the activity in a way that cannot succeed later (the user
    blocked the bot, the messaging window closed, the recipient does not exist): the outbox
    records the failure on the session at once instead of retrying."""


class NoProviderAvailable(MidtierError):
    """No candidate provider could take the conversation."""
