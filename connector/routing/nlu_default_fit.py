"""Training of the default classifier tier: its features as scikit-learn computes them, the
logistic regression, and the plain arrays ``DefaultClassifier`` classifies with.

The three feature blocks are described in ``nlu_default``; ``Fitted.features`` computes them
for any texts with scikit-learn's vectorizers, the reference the fast path is tested against.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from connector.routing.nlu import Progress, normalize
from connector.routing.nlu_data import TrainingData
from connector.routing.nlu_features import WORD_PATTERN
from connector.routing.nlu_static import StaticEmbeddings, packaged

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
