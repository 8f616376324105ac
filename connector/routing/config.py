"""``routing.yaml`` as pydantic models: which provider serves which intents, on what
conditions, the thresholds between them, and how decisions read to people. Loaded (and
re-exported) by :mod:`connector.config`; read by :mod:`connector.routing.policy`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.routing.hours import Hours
from connector.routing.tiers import TIERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Route(_Strict):
    """The intents a provider serves and the conditions under which it may take a conversation."""

    intents: list[str] = Field(default_factory=list, description="names or fnmatch patterns")
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    # The confidence this route's intents need to take a conversation away from a provider
    # that is waiting for an answer (None: ``routing.interrupt_confidence``). Set it low
    # for what must reach a person at once (fraud, a lost card): classifiers are rarely
    # sure of such messages, and a bot asking for a merchant name must not keep them.
    interrupt_confidence: float | None = Field(default=None, ge=0, le=1)
    channels: list[str] | None = None
    max_open_legs: int | None = Field(default=None, gt=0)
    # The share of this provider's outcomes for the message's intent that must be successes
    # (``success_rate`` says over what window and from how many outcomes on); None: any.
    min_success_rate: float | None = Field(default=None, ge=0, le=1)
    # When the provider takes conversations (a desk's opening hours); None: always.
    hours: Hours | None = None
    # A sticky provider (a human agent) keeps the conversation until it hands it back.
    sticky: bool = False


NextAction = Literal["stay", "switch", "ask", "escalate"]
"""stay: keep the current provider; switch: route as the rules say; ask: let the user choose
between the providers of the top intents (buttons, or a numbered list); escalate: hand the
conversation to ``escalate_to`` (a person) at once."""


class Band(_Strict):
    """A confidence band: messages whose top intent scores under ``below`` get ``action``."""

    below: float = Field(gt=0, le=1)
    action: NextAction


class NextBest(_Strict):
    """The next best action per intent, else per confidence band, else ``switch``."""

    by_intent: dict[str, NextAction] = Field(default_factory=dict)
    by_confidence: list[Band] = Field(default_factory=list)
    max_choices: int = Field(default=3, ge=2, le=10)
    # The button title of an intent when the user is asked to choose (default: its words).
    titles: dict[str, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = (
        Field(default_factory=dict)
    )
    escalate_to: str | None = None  # None: the fallback provider

    @model_validator(mode="after")
    def _bands_in_order(self) -> NextBest:
        bounds = [band.below for band in self.by_confidence]
        if bounds != sorted(set(bounds)):
            raise ValueError(
                f"by_confidence: bands must go up by 'below', each once (got {bounds})"
            )
        return self


class Classifier(_Strict):
    """``nlu:`` in routing.yaml: which classifier tier reads intents, and its threshold."""

    # default: numpy / scikit-learn; accurate: a fine-tuned sentence encoder, which needs
    # ``pip install 'midtier[embeddings]'`` (``connector.routing.nlu.TIERS``).
    tier: str = "default"
    # The top in-scope probability under which a message is out of scope (None: the tier's
    # own default, tuned on held-out data; ``midtier nlu eval`` tunes one for your data).
    threshold: float | None = Field(default=None, ge=0, le=1)
    # What the threshold is compared with. intent: the top intent's probability. provider:
    # how far the summed probability of the intents of the provider that would serve the
    # message rose above what a message with no evidence gives them, 0 to 1
    # (connector.routing.nlu_groups); the intent is then the likeliest of that provider's,
    # and that is the confidence routes and next best actions see.
    threshold_on: Literal["intent", "provider"] = "intent"

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str) -> str:
        if value not in TIERS:
            raise ValueError(f"unknown classifier tier {value!r}: expected one of {sorted(TIERS)}")
        return value


class SuccessRate(_Strict):
    """How success rates are measured (``min_success_rate`` of a route, ``midtier stats``):
    from the outcomes of the last ``window_h`` hours, and only once a provider has
    ``min_outcomes`` of them for an intent (until then its route's minimum holds).
    Outcomes older than ``keep_days`` are forgotten."""

    window_h: float = Field(default=168.0, gt=0)
    min_outcomes: int = Field(default=20, ge=1)
    keep_days: float = Field(default=90.0, gt=0)


class Circuit(_Strict):
    """When to stop sending conversations to a failing provider, and for how long."""

    failures: int = Field(default=3, gt=0, description="consecutive failures that open it")
    cooldown_s: float = Field(default=30.0, gt=0)


class RoutingConfig(_Strict):
    """``routing.yaml``: the routes, the thresholds between them, and how decisions read."""

    min_confidence: float = Field(default=0.5, ge=0, le=1)
    # While the current provider waits for an answer (its last reply had
    # inputHint "expectingInput"), switching away takes at least this confidence, unless
    # the target route sets its own ``interrupt_confidence``.
    interrupt_confidence: float = Field(default=0.8, ge=0, le=1)
    fallback: str
    default: str | None = None
    routes: dict[str, Route]
    circuit: Circuit = Field(default_factory=Circuit)
    success_rate: SuccessRate = Field(default_factory=SuccessRate)
    next_best_action: NextBest = Field(default_factory=NextBest)
    nlu: Classifier = Field(default_factory=Classifier)
    # How a decision reads to people (the desk's queue, ``sessions show``): intent name ->
    # a short phrase such as "reported fraud". ``out_of_scope`` labels messages nobody
    # serves. Intents without a label read "asked about <intent words>".
    labels: dict[str, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = (
        Field(default_factory=dict)
    )

    @model_validator(mode="after")
    def _interrupts_above_minimum(self) -> RoutingConfig:
        """An interrupt threshold below the route's minimum confidence would never apply,
        which is almost certainly not what its author meant."""
        problems = []
        for name, route in self.routes.items():
            floor = max(self.min_confidence, route.min_confidence or 0.0)
            value = route.interrupt_confidence
            if value is not None and value < floor:
                problems.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "interrupt_below_minimum",
                            "{value} is below the minimum confidence {floor} this route needs "
                            "anyway; use {floor} to let any confident message interrupt",
                            {"value": value, "floor": floor},
                        ),
                        loc=("routes", name, "interrupt_confidence"),
                        input=value,
                    )
                )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self
