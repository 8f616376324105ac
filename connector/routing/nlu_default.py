"""The default classifier tier: n-grams and static word vectors in one logistic regression.

Each message gets three feature blocks, each of unit length: TF-IDF word (1, 2)-grams, TF-IDF
``char_wb`` (1, 4)-grams (both sublinear), and the mean of its tokens' static vectors distilled
from all-MiniLM-L6-v2 (``nlu_static``), weighted by ``EMBEDDING_WEIGHT``. N-grams catch the
exact wording a deployment's examples use; the vectors carry what words mean, so paraphrases and
few examples per intent go further. An out-of-scope class in the data (``OUT_OF_SCOPE_INTENTS``)
is trained as one more class.

Training uses scikit-learn (``fit``). Classifying does not: sklearn's per-call input validation
alone costs more than midtier's whole per-message budget, so ``DefaultClassifier`` keeps only
plain arrays and computes the same probabilities over the few features a message has
(``nlu_features``, ``nlu_static``). Arrays are saved as ``.npz`` (no pickle).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from connector.interfaces import IntentResult
from connector.routing.nlu import Progress, intent_result, normalize, out_of_scope_index
from connector.routing.nlu_data import TrainingData
from connector.routing.nlu_features import WORD_PATTERN, FeatureScores
from connector.routing.nlu_static import StaticEmbeddings, packaged, packaged_digest

MODEL_FORMAT = "midtier-nlu/2 word(1,2)+char_wb(1,4) tfidf-sublinear + static-minilm lr"
"""Changes whenever features, model or file layout change: part of the cache key."""
DEFAULT_THRESHOLD = 0.3
"""Top in-scope probability under which a message is out of scope (see README.md, "Intent
classifier tiers": tuned on CLINC150 val + oos_val)."""
CHAR_NGRAMS = (1, 4)
EMBEDDING_WEIGHT = 2.0
LR_C = 2.0
_FIT_ROUNDS = 20  # progress steps of the solver, _FIT_ITERATIONS each; it stops once converged
_FIT_ITERATIONS = 10
_STEPS = 1000  # progress is reported in thousandths: 100 for the vectors, 900 for the solver
_EMBED_CHUNK = 500
_Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Fitted:
    """The scikit-learn model and vectorizers ``fit`` trained (the reference for the arrays)."""

    word: TfidfVectorizer
    char: TfidfVectorizer
    model: LogisticRegression

    def features(self, texts: Sequence[str], static: StaticEmbeddings) -> sp.csr_matrix:
        """The model's input rows for raw texts, as sklearn computes them."""
        folded = [normalize(t) for t in texts]
        dense = EMBEDDING_WEIGHT * static.embed_many(list(texts))
        blocks = [self.word.transform(folded), self.char.transform(folded), sp.csr_matrix(dense)]
        return sp.hstack(blocks).tocsr()


def fit(data: TrainingData, *, progress: Progress | None = None) -> Fitted:
    """Train vectorizers and the logistic regression on the examples (~1 min for CLINC150)."""
    texts = [text for text, _ in data.examples]
    labels = [intent for _, intent in data.examples]
    static = packaged()
    total = _STEPS
    dense = np.zeros((len(texts), static.dims))
    for start in range(0, len(texts), _EMBED_CHUNK):
        dense[start : start + _EMBED_CHUNK] = static.embed_many(texts[start : start + _EMBED_CHUNK])
        if progress is not None:
            progress(min(start + _EMBED_CHUNK, len(texts)) * 100 // max(len(texts), 1), total)
    folded = [normalize(t) for t in texts]
    word = TfidfVectorizer(
        lowercase=False, token_pattern=WORD_PATTERN, ngram_range=(1, 2), sublinear_tf=True
    )
    char = TfidfVectorizer(
        lowercase=False, analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True
    )
    x = sp.hstack(
        [word.fit_transform(folded), char.fit_transform(folded), EMBEDDING_WEIGHT * dense]
    ).tocsr()
    # Fitted a few iterations at a time (warm start) so that a long training shows progress.
    model = LogisticRegression(C=LR_C, max_iter=_FIT_ITERATIONS, warm_start=True)
    # One thread: on this data, OpenMP and BLAS threads only contend.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for done in range(1, _FIT_ROUNDS + 1):
            model.fit(x, labels)
            if int(np.max(model.n_iter_)) < _FIT_ITERATIONS:
                break  # converged
            if progress is not None:  # the rounds needed are not known: each covers half the rest
                progress(total - 900 // 2**done, total)
    if progress is not None:
        progress(total, total)
    return Fitted(word, char, model)


@dataclass(frozen=True)
class ModelArrays:
    """Everything classification needs; char feature rows follow the word ones."""

    intents: list[str]
    word_terms: list[str]
    char_terms: list[str]
    idf: _Array  # (n_features,)
    weights: _Array  # (n_features, n_intents)
    dense: _Array  # (static dims, n_intents), EMBEDDING_WEIGHT folded in
    intercept: _Array  # (n_intents,)

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> ModelArrays:
        """Extract the arrays of a model made by ``fit``."""
        n_word, n_char = len(fitted.word.vocabulary_), len(fitted.char.vocabulary_)
        coef = np.asarray(fitted.model.coef_, dtype=np.float64).T
        intercept = np.asarray(fitted.model.intercept_, dtype=np.float64)
        if coef.shape[1] == 1:  # binary: softmax of (-z/2, z/2) is the sigmoid of z
            coef, intercept = (
                np.hstack([-coef / 2, coef / 2]),
                np.array([-1.0, 1.0]) * intercept / 2,
            )
        return cls(
            intents=[str(c) for c in fitted.model.classes_],
            word_terms=[str(t) for t in fitted.word.get_feature_names_out()],
            char_terms=[str(t) for t in fitted.char.get_feature_names_out()],
            idf=np.concatenate([fitted.word.idf_, fitted.char.idf_]).astype(np.float64),
            weights=np.ascontiguousarray(coef[: n_word + n_char]),
            dense=np.ascontiguousarray(coef[n_word + n_char :] * EMBEDDING_WEIGHT),
            intercept=intercept,
        )


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
        self._features = FeatureScores(
            arrays.word_terms, arrays.char_terms, arrays.weights, arrays.idf, ngrams=CHAR_NGRAMS
        )
        table = self._features.table  # the arrays kept are views of it: a model is held once
        self.arrays = arrays = replace(arrays, weights=table[:, :-1], idf=table[:, -1])
        self.intents = arrays.intents
        self._oos = out_of_scope_index(arrays.intents)
        self._static = packaged()
        if self._static.dims != arrays.dense.shape[0]:
            raise ValueError("the static vectors do not match this model")

    def classify(self, text: str) -> IntentResult:
        """The intent of one message, with the top alternatives (in-scope intents only)."""
        return intent_result(self.probabilities(text), self.intents, self._oos, self.threshold)

    def probabilities_many(self, texts: Sequence[str]) -> _Array:
        """``probabilities`` of each text, one row each."""
        out = np.zeros((len(texts), len(self.intents)))
        for i, text in enumerate(texts):
            out[i] = self.probabilities(text)
        return out

    def probabilities(self, text: str) -> _Array:
        """Probability per intent (in ``self.intents`` order), as ``predict_proba`` gives."""
        scores: _Array = self._static.embed(text) @ self.arrays.dense
        scores += self.arrays.intercept
        scores += self._features.scores(normalize(text))
        scores -= scores.max()
        np.exp(scores, out=scores)
        scores /= scores.sum()
        return scores

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
                         weights=a.weights, dense=a.dense, intercept=a.intercept)  # fmt: skip
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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
                arrays = ModelArrays(
                    intents=[str(i) for i in meta["intents"]],
                    word_terms=_terms(npz["word_terms"]),
                    char_terms=_terms(npz["char_terms"]),
                    idf=np.asarray(npz["idf"], dtype=np.float64),
                    weights=np.ascontiguousarray(npz["weights"], dtype=np.float64),
                    dense=np.ascontiguousarray(npz["dense"], dtype=np.float64),
                    intercept=np.asarray(npz["intercept"], dtype=np.float64),
                )
        n_features, n_cols = len(arrays.word_terms) + len(arrays.char_terms), len(arrays.intents)
        if arrays.idf.shape != (n_features,) or arrays.weights.shape != (n_features, n_cols):
            raise ValueError("array shapes do not match the vocabulary")
        if arrays.intercept.shape != (n_cols,) or arrays.dense.shape[1:] != (n_cols,):
            raise ValueError("arrays do not match the intents")
        return cls(arrays, threshold=threshold)


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
