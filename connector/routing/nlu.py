"""Intent classifier tiers, and the classifier the server trains or loads at start-up.

A tier is a module with ``train(data, *, threshold=None, progress=None)`` returning its
classifier, a module-level ``cache_key(data)``, and a classifier class with ``intents``,
``threshold``, ``classify``, ``probabilities_many``, ``save(path, key)`` and the classmethod
``load(path, key, *, threshold=None)``. ``TIERS`` names them; a tier's module is imported only
when it is asked for, so a tier whose extra is not installed costs nothing until then.

- ``default`` (``nlu_default``): word and character n-grams and static word vectors in one
  linear model, numpy only at run time (tens of microseconds a message).
- ``accurate`` (``nlu_accurate``): a sentence encoder; needs ``pip install 'midtier[embeddings]'``.
"""

from __future__ import annotations

import importlib
import logging
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from connector.errors import ConfigError, ConfigErrors
from connector.interfaces import IntentResult
from connector.routing.config import RoutingConfig
from connector.routing.nlu_data import OUT_OF_SCOPE_INTENTS, TrainingData, load_training_data
from connector.routing.nlu_groups import Groups, by_route
from connector.routing.tiers import EXTRAS, TIERS

log = logging.getLogger("midtier.nlu")

RANKING_SIZE = 5
Progress = Callable[[int, int], None]
FEW_INTENTS = 32
"""Up to this many intents, softmax and ranking on Python floats beat numpy's calls."""
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


class TierClassifier(Protocol):
    """What every tier's classifier offers besides ``IntentClassifier.classify``."""

    intents: list[str]
    threshold: float
    groups: Groups | None  # set: confidence judged per provider (``nlu.threshold_on``)

    def classify(self, text: str) -> IntentResult: ...

    def baseline(self) -> npt.NDArray[np.float64]:
        """Probability per intent of a message without evidence (no known word or piece)."""
        ...

    def probabilities_many(self, texts: Sequence[str]) -> npt.NDArray[np.float64]: ...

    def save(self, path: Path, key: str) -> None: ...


class TierUnavailable(Exception):
    """A tier that is not registered, or whose module (or its extra) cannot be imported."""


def tier_module(name: str) -> ModuleType:
    """Import the module of tier ``name``; raise ``TierUnavailable`` saying what to install."""
    path = TIERS.get(name)
    if path is None:
        raise TierUnavailable(f"unknown classifier tier {name!r}: expected one of {sorted(TIERS)}")
    try:
        return importlib.import_module(path)
    except ImportError as exc:
        extra = EXTRAS.get(name)
        hint = f"; install it with: pip install 'midtier[{extra}]'" if extra else ""
        raise TierUnavailable(
            f"the {name!r} classifier tier is not available ({exc}){hint}"
        ) from exc


def tier_class(module: ModuleType) -> Any:
    """The classifier class of a tier module: the one its ``train`` is declared to return.
    Only that annotation is read (the others may name types imported for type checking only)."""
    declared = getattr(module.train, "__annotations__", {}).get("return")
    cls = getattr(module, declared, None) if isinstance(declared, str) else declared
    if not isinstance(cls, type) or not hasattr(cls, "load"):
        raise TierUnavailable(f"{module.__name__}.train does not declare its classifier class")
    return cls


def normalize(text: str) -> str:
    """Lowercase; for non-ASCII text also fold compatibility forms, accents and curly quotes."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def out_of_scope_index(intents: Sequence[str]) -> int | None:
    """Position of the explicit out-of-scope class among ``intents``, if the data had one."""
    for i, name in enumerate(intents):
        if name in OUT_OF_SCOPE_INTENTS:
            return i
    return None


def intent_result(
    probs: npt.NDArray[np.float64] | list[float],
    intents: Sequence[str],
    oos: int | None,
    threshold: float,
    total: float = 1.0,
    groups: Groups | None = None,
) -> IntentResult:
    """The shared reading of a probability row: out of scope when the out-of-scope class wins
    or the top in-scope probability is under ``threshold``; the ranking lists in-scope intents.
    ``probs`` is consumed (the out-of-scope entry is overwritten). Up to 32 intents, a list of
    Python floats costs less than numpy's calls; a list may hold the softmax's exponentials
    unnormalized, ``total`` their sum (only the ranked ones are divided by it). With
    ``groups``, judged per provider (:mod:`connector.routing.nlu_groups`): the intent is the
    likeliest of the best provider's, the confidence their summed probability over its
    baseline."""
    judged = groups.judge(probs, total) if groups is not None else None
    beaten = False  # the out-of-scope class itself won
    if isinstance(probs, list):
        if oos is not None:
            beaten = max(range(len(probs)), key=probs.__getitem__) == oos
            probs[oos] = -1.0
        # sorted() is stable with reverse=True: ties keep intent order, as argsort does
        order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:RANKING_SIZE]
        values = [probs[i] / total for i in order]
    else:  # the top few by argpartition, then in order, ties by index
        if oos is not None:
            beaten = int(probs.argmax()) == oos
            probs[oos] = -1.0
        size = min(RANKING_SIZE, len(probs) - 1)
        best: list[int] = np.argpartition(-probs, size)[: size + 1].tolist()
        values_of = dict(zip(best, probs[best].tolist(), strict=True))
        order = sorted(best, key=lambda i: (-values_of[i], i))[:RANKING_SIZE]
        values = [values_of[i] for i in order]
    ranking = [(intents[i], p) for i, p in zip(order, values, strict=True) if i != oos]
    name, top = ranking[0]
    if judged is not None:
        chosen, top, beaten = judged
        name = intents[chosen]
    scoped = top >= threshold and not beaten
    return IntentResult(
        name=name if scoped else None,
        confidence=top,
        ranking=ranking,
        out_of_scope=not scoped,
    )


def classifier_for(
    routing: RoutingConfig, files: list[Path], cache_dir: Path, progress: Progress | None = None
) -> tuple[TierClassifier, bool]:
    """``train_or_load`` with the tier and threshold that ``routing.yaml``'s ``nlu:`` names,
    its confidence judged per provider of ``routing.routes`` when ``nlu.threshold_on`` says so.
    Raises ``ConfigErrors`` naming ``routing.yaml: nlu.tier`` for a tier that cannot be
    imported (its extra not installed)."""
    nlu = routing.nlu
    try:
        classifier, trained = train_or_load(
            files, cache_dir, tier=nlu.tier, threshold=nlu.threshold, progress=progress
        )
    except TierUnavailable as exc:
        raise ConfigErrors([ConfigError("routing.yaml", "nlu.tier", str(exc))]) from None
    classifier.groups = None
    if nlu.threshold_on == "provider":
        provider = by_route(routing.routes)
        classifier.groups = Groups(classifier.intents, provider, classifier.baseline())
    return classifier, trained


def train_or_load(
    files: list[Path],
    cache_dir: Path,
    *,
    tier: str = "default",
    threshold: float | None = None,
    progress: Progress | None = None,
) -> tuple[TierClassifier, bool]:
    """The classifier for these NLU files: from ``cache_dir`` if trained before, else trained now.

    Returns ``(classifier, trained_now)``. Raises ``ConfigErrors`` for bad training data and
    ``TierUnavailable`` for a tier that cannot be imported. An unreadable cache file (or one
    of an older model format) is logged and rewritten; a cache that cannot be written is logged.
    """
    data = load_training_data(files)
    module = tier_module(tier)
    key: str = module.cache_key(data)
    path = cache_dir / f"nlu-{key[:16]}.npz"
    if path.exists():
        try:
            loaded: TierClassifier = tier_class(module).load(path, key, threshold=threshold)
            return loaded, False
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("ignoring unreadable NLU cache %s (%s); retraining", path, exc)
    classifier: TierClassifier = module.train(data, threshold=threshold, progress=progress)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        classifier.save(path, key)
    except OSError as exc:
        log.warning("cannot write NLU cache %s: %s", path, exc)
    else:
        for stale in cache_dir.glob("nlu-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
    return classifier, True


__all__ = [
    "RANKING_SIZE",
    "TIERS",
    "TierClassifier",
    "TierUnavailable",
    "TrainingData",
    "intent_result",
    "normalize",
    "train_or_load",
]
