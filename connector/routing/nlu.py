"""The embedded intent classifier: TF-IDF word and character n-grams, logistic regression.

Training uses scikit-learn (``fit_pipeline``). Classifying does not: sklearn's per-call input
validation alone costs more than midtier's whole per-message budget, so ``EmbeddedClassifier``
keeps only plain arrays (vocabularies, idf vectors, coefficients) and computes the same
probabilities itself over the few features a message has. ``train_or_load`` caches those arrays
in an ``.npz`` file (no pickle) keyed by the training data, so a restart does not retrain.
The per-message arithmetic is in ``nlu_features``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from connector.interfaces import IntentResult
from connector.routing.nlu_data import TrainingData, load_training_data
from connector.routing.nlu_features import FeatureScores

log = logging.getLogger("midtier.nlu")

MODEL_FORMAT = "midtier-nlu/1 word(1,2)+char_wb(1,4) tfidf-sublinear lr(C=5)"
"""Changes whenever features, model or file layout change: part of the cache key."""
DEFAULT_THRESHOLD = 0.45
"""Top probability under which a message is out of scope. Chosen on CLINC150 val + oos_val
(max in-scope accuracy + oos recall) and on payments paraphrases; both gave 0.45."""
RANKING_SIZE = 5
WORD_PATTERN = r"(?u)\b\w\w+\b"
CHAR_NGRAMS = (1, 4)
LR_C = 5.0
_WORDS = re.compile(WORD_PATTERN)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_FEW_INTENTS = 32  # up to this many, per-intent work in Python floats beats numpy's calls
_Array = npt.NDArray[np.float64]


def normalize(text: str) -> str:
    """Lowercase; for non-ASCII text also fold compatibility forms, accents and curly quotes."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def fit_pipeline(data: TrainingData) -> Pipeline:
    """Train the scikit-learn pipeline on normalized example texts (the reference model)."""
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(lowercase=False, token_pattern=WORD_PATTERN,
                                     ngram_range=(1, 2), sublinear_tf=True)),
            ("char", TfidfVectorizer(lowercase=False, analyzer="char_wb",
                                     ngram_range=CHAR_NGRAMS, sublinear_tf=True)),
        ]
    )  # fmt: skip
    model = LogisticRegression(C=LR_C, max_iter=5000)
    pipeline = Pipeline([("features", features), ("model", model)])
    # One thread: on small data, OpenMP and BLAS threads only contend (0.8 s -> 0.2 s on 2 cores).
    with threadpool_limits(limits=1):
        pipeline.fit([normalize(text) for text, _ in data.examples], [i for _, i in data.examples])
    return pipeline


@dataclass(frozen=True)
class ModelArrays:
    """Everything classification needs; char feature columns follow the word ones."""

    intents: list[str]
    word_terms: list[str]
    char_terms: list[str]
    idf: _Array  # (n_features,)
    weights: _Array  # (n_features, n_intents)
    intercept: _Array  # (n_intents,)

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> ModelArrays:
        """Extract the arrays of a pipeline made by ``fit_pipeline``."""
        union = pipeline.named_steps["features"]
        word, char = (vec for _, vec in union.transformer_list)
        model = pipeline.named_steps["model"]
        return cls(
            intents=[str(c) for c in model.classes_],
            word_terms=[str(t) for t in word.get_feature_names_out()],
            char_terms=[str(t) for t in char.get_feature_names_out()],
            idf=np.concatenate([word.idf_, char.idf_]).astype(np.float64),
            weights=np.ascontiguousarray(model.coef_.T, dtype=np.float64),
            intercept=np.asarray(model.intercept_, dtype=np.float64),
        )


class EmbeddedClassifier:
    """Reads intents in-process (~25 us a message); implements ``IntentClassifier``."""

    def __init__(self, arrays: ModelArrays, *, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        self._features = FeatureScores(
            arrays.word_terms, arrays.char_terms, arrays.weights, arrays.idf,
            words=_WORDS, ngrams=CHAR_NGRAMS,
        )  # fmt: skip
        table = self._features.table  # the arrays kept are views of it: a model is held once
        self.arrays = arrays = replace(arrays, weights=table[:, :-1], idf=table[:, -1])
        self.threshold = threshold
        self.intents = arrays.intents
        self._b = arrays.intercept.tolist()
        self._two_class = arrays.weights.shape[1] == 1

    @classmethod
    def train(
        cls, data: TrainingData, *, threshold: float = DEFAULT_THRESHOLD
    ) -> EmbeddedClassifier:
        """Fit on training data: ~0.25 s for the shipped ~300 examples, ~40 s for CLINC150."""
        return cls(ModelArrays.from_pipeline(fit_pipeline(data)), threshold=threshold)

    def classify(self, text: str) -> IntentResult:
        """The intent of one message, with the top ``RANKING_SIZE`` alternatives."""
        probs = self._probabilities(text)
        if len(probs) > _FEW_INTENTS:
            order = np.argsort(-np.array(probs), kind="stable")[:RANKING_SIZE].tolist()
        else:  # sorted() is stable with reverse=True: ties keep intent order, as argsort does
            order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:RANKING_SIZE]
        ranking = [(self.intents[i], probs[i]) for i in order]
        name, top = ranking[0]
        scoped = top >= self.threshold
        return IntentResult(
            name=name if scoped else None, confidence=top, ranking=ranking, out_of_scope=not scoped
        )

    def probabilities(self, text: str) -> _Array:
        """Probability per intent (in ``self.intents`` order), as ``predict_proba`` gives."""
        return np.array(self._probabilities(text))

    def _probabilities(self, text: str) -> list[float]:
        word, char = self._features.parts(normalize(text))
        word_sq, char_sq = float(word[-1]), float(char[-1])
        w = 1.0 / math.sqrt(word_sq) if word_sq > 0.0 else 0.0
        c = 1.0 / math.sqrt(char_sq) if char_sq > 0.0 else 0.0
        if self._two_class:  # binary LogisticRegression keeps one column: p(second class)
            p = 1.0 / (1.0 + math.exp(-(float(word[0]) * w + float(char[0]) * c + self._b[0])))
            return [1.0 - p, p]
        if len(self.intents) > _FEW_INTENTS:
            array = word[:-1] * w
            array += char[:-1] * c
            array += self.arrays.intercept
            array -= array.max()
            np.exp(array, out=array)
            array /= array.sum()
            probs: list[float] = array.tolist()
            return probs
        # zip leaves out the last column (the norms); Python floats cost less than numpy calls
        parts = zip(word.tolist(), char.tolist(), self._b, strict=False)
        scores = [a * w + b * c + i for a, b, i in parts]
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        total = sum(exp)
        return [e / total for e in exp]

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path, key: str) -> None:
        """Write the arrays to ``path`` atomically (temp file in the same directory, replace)."""
        a = self.arrays
        meta = json.dumps({"format": MODEL_FORMAT, "key": key, "intents": a.intents})
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=_blob(meta), word_terms=_blob("\n".join(a.word_terms)),
                         char_terms=_blob("\n".join(a.char_terms)), idf=a.idf,
                         weights=a.weights, intercept=a.intercept)  # fmt: skip
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, path: Path, key: str, *, threshold: float = DEFAULT_THRESHOLD
    ) -> EmbeddedClassifier:
        """Read a file written by ``save`` for ``key``; raise ``ValueError`` if it does not fit."""
        with path.open("rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                meta: dict[str, Any] = json.loads(_text(npz["meta"]))
                if meta.get("format") != MODEL_FORMAT or meta.get("key") != key:
                    raise ValueError("written for another model format or training data")
                arrays = ModelArrays(
                    intents=[str(i) for i in meta["intents"]],
                    word_terms=_terms(npz["word_terms"]),
                    char_terms=_terms(npz["char_terms"]),
                    idf=np.asarray(npz["idf"], dtype=np.float64),
                    weights=np.ascontiguousarray(npz["weights"], dtype=np.float64),
                    intercept=np.asarray(npz["intercept"], dtype=np.float64),
                )
        n_features = len(arrays.word_terms) + len(arrays.char_terms)
        n_cols = 1 if len(arrays.intents) == 2 else len(arrays.intents)
        if arrays.idf.shape != (n_features,) or arrays.weights.shape != (n_features, n_cols):
            raise ValueError("array shapes do not match the vocabulary")
        if arrays.intercept.shape != (n_cols,):
            raise ValueError("intercept does not match the intents")
        return cls(arrays, threshold=threshold)


def _blob(text: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _text(blob: npt.NDArray[np.uint8]) -> str:
    return blob.tobytes().decode("utf-8")


def _terms(blob: npt.NDArray[np.uint8]) -> list[str]:
    text = _text(blob)
    return text.split("\n") if text else []


def cache_key(data: TrainingData) -> str:
    """sha256 over the data's fingerprint, the model format and the scikit-learn version."""
    parts = (data.fingerprint(), MODEL_FORMAT, sklearn.__version__)
    return sha256("\n".join(parts).encode("utf-8")).hexdigest()


def train_or_load(
    files: list[Path], cache_dir: Path, *, threshold: float | None = None
) -> tuple[EmbeddedClassifier, bool]:
    """The classifier for these NLU files: from ``cache_dir`` if trained before, else trained now.

    Returns ``(classifier, trained_now)``. Raises ``ConfigErrors`` for bad training data. An
    unreadable cache file is logged and rewritten; a cache that cannot be written is logged.
    """
    data = load_training_data(files)
    key = cache_key(data)
    path = cache_dir / f"nlu-{key[:16]}.npz"
    limit = DEFAULT_THRESHOLD if threshold is None else threshold
    if path.exists():
        try:
            return EmbeddedClassifier.load(path, key, threshold=limit), False
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("ignoring unreadable NLU cache %s (%s); retraining", path, exc)
    classifier = EmbeddedClassifier.train(data, threshold=limit)
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
