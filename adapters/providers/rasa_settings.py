"""The settings of a Rasa provider, kind ``rasa``: its keys in ``providers.yaml``.

``providers.yaml``::

    orders:
      kind: rasa
      title: the orders assistant
      url: http://rasa:5005                 # the Rasa server
      channel: rest                         # rest (default) | callback
      token: ${RASA_TOKEN:-}                # Rasa's --auth-token, for /model/parse and the
                                            # tracker API (resume); sent as ?token=
      callback_secret: ${RASA_CALLBACK_SECRET}  # required with channel: callback
      parse_intents: false                  # also read intents with the bot's /model/parse
      parse_timeout_s: 2                    # ... within this time, else skipped
      timeout_s: 10                         # the core gives up on a turn of the bot after this
      text_fallback: true                   # also write buttons/images into the text
      handoff_intent: ""                    # e.g. midtier_handoff: tell the bot at once
      restart_on_close: false               # send /restart when a leg closes

The provider itself is :class:`adapters.providers.rasa.RasaProvider`.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.providers.fields import MIN_SECRET_CHARS, HttpUrl

RasaChannel = Literal["rest", "callback"]
CHANNELS: tuple[str, ...] = get_args(RasaChannel)


class RasaSettings(BaseModel):
    """``providers.<name>`` keys of ``kind: rasa`` (besides the common ones)."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl = Field(description="the Rasa server")
    channel: RasaChannel = "rest"
    token: str = Field(default="", description="Rasa's --auth-token, sent as ?token=")
    # Declared after ``channel``: its check reads the channel.
    callback_secret: str = Field(default="", validate_default=True)
    parse_intents: bool = False
    parse_timeout_s: float | None = Field(default=None, gt=0, description="unset: 2 s at most")
    text_fallback: bool = True
    handoff_intent: str = ""
    restart_on_close: bool = False

    @field_validator("callback_secret")
    @classmethod
    def _secret_for_callbacks(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("channel") == "callback" and len(value) < MIN_SECRET_CHARS:
            raise ValueError(
                f"required with channel: callback (at least {MIN_SECRET_CHARS} characters, "
                "from an env var)"
            )
        return value


__all__ = ["CHANNELS", "RasaChannel", "RasaSettings"]
