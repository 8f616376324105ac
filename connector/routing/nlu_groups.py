"""Confidence per provider (``routing.yaml``: ``nlu: {threshold_on: provider}``).

A classifier reads intents; the router sends each to a provider. When a provider serves
several close intents ("card declined", "card not working"), a message between them splits
its probability over them: no intent of it may reach the threshold although the provider is
plainly the right one. Judged per provider, the best provider is the one whose intents have
the most probability together; the message's intent is the likeliest of that provider's, and
its confidence is how far that sum rose above what the provider gets from a message with no
evidence at all (the classifier's ``baseline``): ``(sum - base) / (1 - base)``, 0 at the
baseline, 1 at certainty. So a provider that serves most intents, whose intents sum to 0.6 for
an empty message, does not take every message. It is out of scope when that confidence is
under the threshold, or when the out-of-scope class outweighs the sum.

The intents are grouped by the provider that serves them in ``routing.yaml`` order (an
intent two routes serve counts for the first, the one a new conversation gets); an intent no
route serves is a group of its own. On CLINC150 (its ten domains standing for providers,
``midtier nlu eval --dataset clinc150 --threshold-on provider``) this rejects more of the
out-of-scope messages and fewer of the in-scope ones than the same model judged per intent:
see ``docs/benchmarks.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from connector.routing.nlu_data import OUT_OF_SCOPE_INTENTS
from connector.routing.routes import CompiledRoute

_Array = npt.NDArray[np.float64]
Judged = tuple[int, float, bool]
"""What :meth:`Groups.judge` finds: the intent's index, its provider's confidence (its summed
probability over its baseline), and whether the out-of-scope class outweighs the sum."""


class Groups:
    """A classifier's intents (``intents``, in its order) grouped by ``group_of`` (an intent's
    provider, None for none); out-of-scope classes belong to no group. ``baseline``: the
    classifier's probabilities for a message without evidence (None: zero for every group)."""

    def __init__(
        self,
        intents: Sequence[str],
        group_of: Callable[[str], str | None],
        baseline: Sequence[float] | _Array | None = None,
    ) -> None:
        keys: dict[tuple[str, str], int] = {}
        of: list[int] = []
        for intent in intents:
            if intent in OUT_OF_SCOPE_INTENTS:
                of.append(-1)
                continue
            provider = group_of(intent)
            key = ("provider", provider) if provider is not None else ("intent", intent)
            of.append(keys.setdefault(key, len(keys)))
        if not keys:
            raise ValueError("no in-scope intent to group")
        self.of = of  # group per intent, -1 for an out-of-scope class
        self.size = len(keys)
        self.oos = [i for i, g in enumerate(of) if g < 0]
        self._of = np.array(of)
        self.matrix = np.zeros((len(of), self.size))  # intents x groups, one 1 per in-scope row
        for i, g in enumerate(of):
            if g >= 0:
                self.matrix[i, g] = 1.0
        base = np.zeros(self.size) if baseline is None else np.asarray(baseline) @ self.matrix
        self.base: list[float] = np.minimum(base, 1.0 - 1e-9).tolist()  # per group
        self._base = np.array(self.base)

    def lift(self, mass: float, group: int) -> float:
        """``mass`` of ``group`` as a confidence: 0 at its baseline (or under it), 1 at 1."""
        base = self.base[group]
        return max(0.0, (mass - base) / (1.0 - base))

    def judge(self, probs: Sequence[float] | _Array, total: float = 1.0) -> Judged:
        """One message's probabilities (all intents, unnormalized if ``total`` is their sum):
        the likeliest intent of the likeliest group, the group's confidence (``lift`` of its
        summed probability), and whether the out-of-scope class outweighs that sum."""
        if isinstance(probs, np.ndarray):
            chosen, lifted, outweighed = self.judge_many(probs[None, :] / total)
            return int(chosen[0]), float(lifted[0]), bool(outweighed[0])
        sums = [0.0] * self.size
        for g, p in zip(self.of, probs, strict=True):
            if g >= 0:
                sums[g] += p
        group = max(range(self.size), key=sums.__getitem__)
        members = [i for i, g in enumerate(self.of) if g == group]
        best = max(members, key=probs.__getitem__)
        oos = sum(probs[i] for i in self.oos)
        mass = sums[group]
        return best, self.lift(mass / total, group), oos > mass

    def judge_many(self, probs: _Array) -> tuple[npt.NDArray[np.int_], _Array, Any]:
        """``judge`` of each row of ``probs`` (normalized): intents, confidences, outweighed."""
        masses = probs @ self.matrix
        groups = masses.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        top = masses.max(axis=1, initial=0.0)
        inside = self._of[None, :] == groups[:, None]
        best = np.where(inside, probs, -1.0).argmax(axis=1) if len(probs) else groups
        oos = probs[:, self.oos].sum(axis=1) if self.oos else np.zeros(len(probs))
        base = self._base[groups] if len(probs) else np.zeros(0)
        lifted = np.maximum(0.0, (top - base) / (1.0 - base))
        return best, lifted, oos > top


def by_route(routes: Mapping[str, Any]) -> Callable[[str], str | None]:
    """An intent's provider: the first of ``routes`` (``routing.yaml``'s, in order) serving
    it, as a new conversation is routed; None when none does."""
    compiled = [CompiledRoute(name, route) for name, route in routes.items()]

    def provider(intent: str) -> str | None:
        return next((r.name for r in compiled if r.serves(intent)), None)

    return provider
