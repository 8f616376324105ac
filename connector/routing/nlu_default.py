"""The default classifier tier: n-grams and static word vectors in one logistic regression.

Each message gets three feature blocks: the sublinear TF-IDF of its word (1, 2)-grams (unit
length); the mean over its whitespace-separated chunks of each chunk's sublinear ``char_wb``
(1, 4)-gram TF-IDF (each of unit length), weighted by ``CHAR_WEIGHT``; and the unit-length sum
of its tokens' static vectors distilled from all-MiniLM-L6-v2 (``nlu_static``), weighted by
``EMBEDDING_WEIGHT``. N-grams catch the exact wording a deployment's examples use; the vectors
carry what words mean, so paraphrases and few examples per intent go further. Averaging char
n-grams per chunk (rather than counting them over the whole message) lets classification
compute each chunk's part once (``nlu_features``). An out-of-scope class in the data
(``OUT_OF_SCOPE_INTENTS``) is trained as one more class.

Training uses scikit-learn (``fit``, in ``nlu_default_fit``). Classifying does not: sklearn's
per-call input validation alone costs more than midtier's whole per-message budget, so
``DefaultClassifier`` keeps only plain arrays and computes the same probabilities itself.
Arrays are saved as ``.npz`` (no pickle).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn

from connector.files import replacing_bytes
from connector.interfaces import IntentResult
from connector.routing.nlu import (
    FEW_INTENTS,
    Progress,
    intent_result,
    normalize,
    out_of_scope_index,
)
from connector.routing.nlu_data import TrainingData
from connector.routing.nlu_default_fit import CHAR_NGRAMS, Fitted, ModelArrays, fit
from connector.routing.nlu_features import ChunkScores, MessageScores, WordScores
from connector.routing.nlu_groups import Groups
from connector.routing.nlu_static import packaged, packaged_digest

MODEL_FORMAT = "midtier-nlu/2 word(1,2) tfidf + chunk-mean char_wb(1,4) tfidf + static-minilm lr"
"""Changes whenever features, model or file layout change: part of the cache key."""
DEFAULT_THRESHOLD = 0.3
"""Top in-scope probability under which a message is out of scope, unless configured. Chosen on
the shipped payments data, which has no out-of-scope class (off-topic messages mostly out of
scope, held-out paraphrases kept: tests/connector/routing/test_nlu.py); with an out-of-scope
class less is needed: on CLINC150, ``midtier nlu eval`` tunes 0.21 on val + oos_val."""
_Array = npt.NDArray[np.float64]
_Floats = npt.NDArray[np.floating[Any]]


def train(
    data: TrainingData, *, threshold: float | None = None, progress: Progress | None = None
) -> DefaultClassifier:
    """Fit on training data: well under a second for a few hundred examples."""
    return DefaultClassifier(
        ModelArrays.from_fitted(fit(data, progress=progress)), threshold=threshold
    )


class DefaultClassifier:
    """Reads intents in-process in tens of microseconds; implements ``IntentClassifier``."""

    def __init__(self, arrays: ModelArrays, *, threshold: float | None = None) -> None:
        limit = DEFAULT_THRESHOLD if threshold is None else threshold
        if not 0.0 <= limit <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {limit}")
        self.threshold = limit
        self.groups: Groups | None = None  # set by ``classifier_for``: judged per provider
        self.arrays = arrays
        self.intents = arrays.intents
        self._oos = out_of_scope_index(arrays.intents)
        static = packaged()
        if static.dims != arrays.dense.shape[0]:
            raise ValueError("the static vectors do not match this model")
        chunks = ChunkScores(
            arrays.char_terms, arrays.char_weights, arrays.char_idf, static, arrays.dense,
            ngrams=CHAR_NGRAMS, fold=normalize,
        )  # fmt: skip
        words = WordScores(arrays.word_terms, arrays.word_weights, arrays.word_idf, chunks.width)
        self._message = MessageScores(words, chunks, normalize)
        word, chars = words.table, chunks.table
        self.arrays = replace(arrays, word_weights=word[:, :-1], word_idf=word[:, -1],
                              char_weights=chars[:, :-1], char_idf=chars[:, -1])  # fmt: skip

    def classify(self, text: str) -> IntentResult:
        """The intent of one message, with the top alternatives (in-scope intents only)."""
        scores = self._scores(text)
        if len(scores) > FEW_INTENTS:
            probs = _softmax(scores)
            return intent_result(probs, self.intents, self._oos, self.threshold, 1.0, self.groups)
        listed: list[float] = scores.tolist()
        top = max(listed)
        exps = [math.exp(s - top) for s in listed]
        total = sum(exps)
        return intent_result(exps, self.intents, self._oos, self.threshold, total, self.groups)

    def probabilities_many(self, texts: Sequence[str]) -> _Array:
        """``probabilities`` of each text, one row each."""
        out = np.zeros((len(texts), len(self.intents)))
        for i, text in enumerate(texts):
            out[i] = self.probabilities(text)
        return out

    def baseline(self) -> _Array:
        """The probabilities of a message with no known n-gram or word: the intercept's."""
        return _softmax(self.arrays.intercept.copy())

    def probabilities(self, text: str) -> _Array:
        """Probability per intent (in ``self.intents`` order), as ``predict_proba`` gives."""
        return _softmax(self._scores(text))

    def _scores(self, text: str) -> _Array:
        scores = self._message.scores(text)
        if scores is None:
            return self.arrays.intercept.copy()
        return scores + self.arrays.intercept

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path, key: str) -> None:
        """Write the arrays to ``path`` atomically (temp file in the same directory, replace)."""
        a = self.arrays
        meta = json.dumps({"format": MODEL_FORMAT, "key": key, "intents": a.intents})
        with replacing_bytes(path) as f:
            np.savez(f, meta=_blob(meta), word_terms=_blob("\n".join(a.word_terms)),
                     char_terms=_blob("\n".join(a.char_terms)), word_idf=a.word_idf,
                     char_idf=a.char_idf, word_weights=a.word_weights,
                     char_weights=a.char_weights, dense=a.dense,
                     intercept=a.intercept)  # fmt: skip

    @classmethod
    def load(cls, path: Path, key: str, *, threshold: float | None = None) -> DefaultClassifier:
        """Read a file written by ``save`` for ``key``; raise ``ValueError`` if it does not fit."""
        with path.open("rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                meta: dict[str, Any] = json.loads(_text(npz["meta"]))
                if meta.get("format") != MODEL_FORMAT or meta.get("key") != key:
                    raise ValueError("written for another model format or training data")
                floats: dict[str, Any] = {
                    name: np.asarray(npz[name], dtype=np.float32)
                    for name in ("word_idf", "char_idf", "word_weights", "char_weights")
                }
                for name in ("dense", "intercept"):
                    floats[name] = np.ascontiguousarray(npz[name], dtype=np.float64)
                arrays = ModelArrays(
                    intents=[str(i) for i in meta["intents"]],
                    word_terms=_terms(npz["word_terms"]),
                    char_terms=_terms(npz["char_terms"]),
                    **floats,
                )
        n = len(arrays.intents)
        blocks = [(arrays.word_terms, arrays.word_idf, arrays.word_weights),
                  (arrays.char_terms, arrays.char_idf, arrays.char_weights)]  # fmt: skip
        for terms, idf, weights in blocks:
            if idf.shape != (len(terms),) or weights.shape != (len(terms), n):
                raise ValueError("array shapes do not match the vocabulary")
        if arrays.intercept.shape != (n,) or arrays.dense.shape[1:] != (n,):
            raise ValueError("arrays do not match the intents")
        return cls(arrays, threshold=threshold)


def _softmax(scores: _Array) -> _Array:
    scores -= scores.max()
    np.exp(scores, out=scores)
    scores /= scores.sum()
    return scores


def _blob(text: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _text(blob: npt.NDArray[np.uint8]) -> str:
    return blob.tobytes().decode("utf-8")


def _terms(blob: npt.NDArray[np.uint8]) -> list[str]:
    text = _text(blob)
    return text.split("\n") if text else []


def cache_key(data: TrainingData) -> str:
    """sha256 over the data's fingerprint, the model format, the static vectors' file and the
    scikit-learn and numpy versions."""
    parts = (data.fingerprint(), MODEL_FORMAT, packaged_digest(), sklearn.__version__,
             np.__version__)  # fmt: skip
    return sha256("\n".join(parts).encode("utf-8")).hexdigest()


__all__ = ["DEFAULT_THRESHOLD", "MODEL_FORMAT", "DefaultClassifier", "Fitted", "ModelArrays",
           "cache_key", "fit", "train"]  # fmt: skip
