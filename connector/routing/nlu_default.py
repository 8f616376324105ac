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

Training uses scikit-learn (``fit``). Classifying does not: sklearn's per-call input validation
alone costs more than midtier's whole per-message budget, so ``DefaultClassifier`` keeps only
plain arrays and computes the same probabilities itself. Arrays are saved as ``.npz`` (no
pickle).
"""

from __future__ import annotations

import json
import math
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
from connector.routing.nlu import (
    FEW_INTENTS,
    Progress,
    intent_result,
    normalize,
    out_of_scope_index,
)
from connector.routing.nlu_data import TrainingData
from connector.routing.nlu_features import WORD_PATTERN, ChunkScores, WordScores
from connector.routing.nlu_static import StaticEmbeddings, packaged, packaged_digest

MODEL_FORMAT = "midtier-nlu/2 word(1,2) tfidf + chunk-mean char_wb(1,4) tfidf + static-minilm lr"
"""Changes whenever features, model or file layout change: part of the cache key."""
DEFAULT_THRESHOLD = 0.3
"""Top in-scope probability under which a message is out of scope, unless configured. Chosen on
the shipped payments data, which has no out-of-scope class (off-topic messages mostly out of
scope, held-out paraphrases kept: tests/connector/routing/test_nlu.py); with an out-of-scope
class less is needed: on CLINC150, ``midtier nlu eval`` tunes 0.21 on val + oos_val."""
CHAR_NGRAMS = (1, 4)
CHAR_WEIGHT = 2.0
EMBEDDING_WEIGHT = 2.0
LR_C = 2.0
_FIT_ROUNDS = 20  # progress steps of the solver, _FIT_ITERATIONS each; it stops once converged
_FIT_ITERATIONS = 10
_STEPS = 1000  # progress is reported in thousandths: 100 for the features, 900 for the solver
_Array = npt.NDArray[np.float64]
_Floats = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Fitted:
    """The scikit-learn model and vectorizers ``fit`` trained (the reference for the arrays)."""

    word: TfidfVectorizer
    char: TfidfVectorizer
    model: LogisticRegression

    def features(
        self, texts: Sequence[str], static: StaticEmbeddings, progress: Progress | None = None
    ) -> sp.csr_matrix:
        """The model's input rows for raw texts, computed with scikit-learn's vectorizers."""
        word = self.word.transform([normalize(t) for t in texts])
        return sp.hstack([word, *_chunk_blocks(texts, self.char, static, progress)]).tocsr()


def _chunk_blocks(
    texts: Sequence[str],
    char: TfidfVectorizer,
    static: StaticEmbeddings,
    progress: Progress | None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The char block (mean over a text's whitespace chunks of each chunk's unit-length tf-idf)
    and the static block (unit-length sum of its tokens' vectors), weighted."""
    index: dict[str, int] = {}
    rows, cols, shares = [], [], []
    for r, text in enumerate(texts):
        chunks = text.split()
        for chunk in chunks:
            rows.append(r)
            cols.append(index.setdefault(chunk, len(index)))
            shares.append(1.0 / len(chunks))
    chunks = list(index)
    vectors = np.zeros((len(chunks), static.dims))
    for i, chunk in enumerate(chunks):
        tokens = static.rows(chunk)
        if len(tokens):
            vectors[i] = static.vectors[tokens].sum(axis=0)
        if progress is not None and i % 1000 == 0:
            progress(i * 100 // len(chunks), _STEPS)
    shape = (len(texts), len(chunks))
    mean = sp.csr_matrix((shares, (rows, cols)), shape=shape)  # repeated chunks add up
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    grams = (  # one unit-length row per chunk
        char.transform([normalize(c) for c in chunks])
        if chunks
        else sp.csr_matrix((0, len(char.vocabulary_)))
    )
    summed = np.asarray(counts @ vectors)
    norms = np.sqrt((summed * summed).sum(axis=1, keepdims=True))
    unit = np.divide(summed, norms, out=np.zeros_like(summed), where=norms > 0)
    return sp.csr_matrix(CHAR_WEIGHT * (mean @ grams)), sp.csr_matrix(EMBEDDING_WEIGHT * unit)


def fit(data: TrainingData, *, progress: Progress | None = None) -> Fitted:
    """Train vectorizers and the logistic regression on the examples (~1 min for CLINC150)."""
    texts = [text for text, _ in data.examples]
    labels = [intent for _, intent in data.examples]
    total = _STEPS
    folded = [normalize(t) for t in texts]
    word = TfidfVectorizer(
        lowercase=False, token_pattern=WORD_PATTERN, ngram_range=(1, 2), sublinear_tf=True
    )
    char = TfidfVectorizer(
        lowercase=False, analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True
    )
    char.fit(folded)
    x = sp.hstack(
        [word.fit_transform(folded), *_chunk_blocks(texts, char, packaged(), progress)]
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
    """Everything classification needs: the coefficients of each block, their weights folded in."""

    intents: list[str]
    word_terms: list[str]
    char_terms: list[str]
    # The n-gram blocks are float32 in a classifier (views of its per-message tables, so a
    # model is held once) and float64 as fit extracts them.
    word_idf: _Floats  # (n_word,)
    char_idf: _Floats  # (n_char,)
    word_weights: _Floats  # (n_word, n_intents)
    char_weights: _Floats  # (n_char, n_intents), CHAR_WEIGHT folded in
    dense: _Array  # (static dims, n_intents), EMBEDDING_WEIGHT folded in
    intercept: _Array  # (n_intents,)

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> ModelArrays:
        """Extract the arrays of a model made by ``fit``."""
        n_word, n_char = len(fitted.word.vocabulary_), len(fitted.char.vocabulary_)
        coef = np.asarray(fitted.model.coef_, dtype=np.float64).T
        intercept = np.asarray(fitted.model.intercept_, dtype=np.float64)
        if coef.shape[1] == 1:  # binary: softmax of (-z/2, z/2) is the sigmoid of z
            coef, intercept = np.hstack([-coef, coef]) / 2, np.array([-1.0, 1.0]) * intercept / 2
        return cls(
            intents=[str(c) for c in fitted.model.classes_],
            word_terms=[str(t) for t in fitted.word.get_feature_names_out()],
            char_terms=[str(t) for t in fitted.char.get_feature_names_out()],
            word_idf=np.asarray(fitted.word.idf_, dtype=np.float64),
            char_idf=np.asarray(fitted.char.idf_, dtype=np.float64),
            word_weights=np.ascontiguousarray(coef[:n_word]),
            char_weights=np.ascontiguousarray(coef[n_word : n_word + n_char] * CHAR_WEIGHT),
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
        self.arrays = arrays
        self.intents = arrays.intents
        self._oos = out_of_scope_index(arrays.intents)
        static = packaged()
        if static.dims != arrays.dense.shape[0]:
            raise ValueError("the static vectors do not match this model")
        self._words = WordScores(arrays.word_terms, arrays.word_weights, arrays.word_idf)
        self._chunks = ChunkScores(
            arrays.char_terms, arrays.char_weights, arrays.char_idf, static, arrays.dense,
            ngrams=CHAR_NGRAMS, fold=normalize,
        )  # fmt: skip
        words, chars = self._words.table, self._chunks.table
        self.arrays = replace(arrays, word_weights=words[:, :-1], word_idf=words[:, -1],
                              char_weights=chars[:, :-1], char_idf=chars[:, -1])  # fmt: skip

    def classify(self, text: str) -> IntentResult:
        """The intent of one message, with the top alternatives (in-scope intents only)."""
        scores = self._scores(text)
        if len(scores) > FEW_INTENTS:
            probs = _softmax(scores)
            return intent_result(probs, self.intents, self._oos, self.threshold)
        listed: list[float] = scores.tolist()
        top = max(listed)
        exps = [math.exp(s - top) for s in listed]
        total = sum(exps)
        return intent_result([e / total for e in exps], self.intents, self._oos, self.threshold)

    def probabilities_many(self, texts: Sequence[str]) -> _Array:
        """``probabilities`` of each text, one row each."""
        out = np.zeros((len(texts), len(self.intents)))
        for i, text in enumerate(texts):
            out[i] = self.probabilities(text)
        return out

    def probabilities(self, text: str) -> _Array:
        """Probability per intent (in ``self.intents`` order), as ``predict_proba`` gives."""
        return _softmax(self._scores(text))

    def _scores(self, text: str) -> _Array:
        scores = self.arrays.intercept.copy()
        word = self._words.scores(normalize(text))
        if word is not None:
            scores += word
        chunks = self._chunks.scores(text)
        if chunks is not None:
            scores += chunks
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
                         char_terms=_blob("\n".join(a.char_terms)), word_idf=a.word_idf,
                         char_idf=a.char_idf, word_weights=a.word_weights,
                         char_weights=a.char_weights, dense=a.dense,
                         intercept=a.intercept)  # fmt: skip
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
