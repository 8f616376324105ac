"""The embedded classifier's per-message arithmetic: tf-idf of a message's few features x coef.

What the scikit-learn pipeline computes (two sublinear ``TfidfVectorizer``s, word and
``char_wb``, then the coefficients), without its per-call overhead. Per message, Python and
numpy call overheads on caches that the server's other work has cooled cost more than the
arithmetic: so a message's columns are joined from packed bytes (no Python int per column),
counted by one ``bincount``, and their weights and idf come in one gather from one table.
"""

from __future__ import annotations

import math
import re
from itertools import chain, pairwise

import numpy as np
import numpy.typing as npt

WORD_PATTERN = r"(?u)\b\w\w+\b"
"""Words as scikit-learn's ``TfidfVectorizer`` finds them by default."""
_WORDS = re.compile(WORD_PATTERN)
_WORD_CACHE_MAX = 50_000
_Array = npt.NDArray[np.float64]


class _GramColumns(dict[str, bytes]):
    """Word -> the columns of its known char n-grams, cut as sklearn's ``char_wb`` analyzer
    cuts them, packed as ``intp`` bytes; computed when a word is first seen."""

    def __init__(self, columns: dict[str, int], ngrams: tuple[int, int]) -> None:
        super().__init__()
        self._columns = columns
        self._ngrams = ngrams

    def __missing__(self, word: str) -> bytes:
        if len(self) >= _WORD_CACHE_MAX:
            self.clear()
        padded, (low, high) = f" {word} ", self._ngrams
        grams = [
            padded[i : i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)
        ]
        known = [j for j in map(self._columns.get, grams) if j is not None]
        self[word] = packed = np.array(known, dtype=np.intp).tobytes()
        return packed


class FeatureScores:
    """Scores a normalized message's word and char features against the coefficients.

    ``table`` holds one row per feature: its weights, then its idf, so one gather brings both.
    """

    def __init__(
        self,
        word_terms: list[str],
        char_terms: list[str],
        weights: _Array,
        idf: _Array,
        *,
        ngrams: tuple[int, int],
    ) -> None:
        n_word = len(word_terms)
        self._words = _WORDS
        self._terms = {t: np.intp(i).tobytes() for i, t in enumerate(word_terms)}
        self._grams = _GramColumns({t: i + n_word for i, t in enumerate(char_terms)}, ngrams)
        # float32: a message gathers some 200 rows of (intents + 1) numbers, and half the bytes
        # cost about half the time; the scores differ from float64 ones by about 1e-7.
        self.table = np.empty((idf.shape[0], weights.shape[1] + 1), dtype=np.float32)
        self.table[:, :-1], self.table[:, -1] = weights, idf
        self._per_count = _per_count(64)

    def scores(self, text: str) -> npt.NDArray[np.float32]:
        """``word / |word| + char / |char|`` (the tf-idf vectors of the two parts, each of unit
        length, times the coefficients): what the pipeline's sparse features add to the scores."""
        words = self._words.findall(text)
        found = [*filter(None, map(self._terms.get, chain(words, map(" ".join, pairwise(words)))))]
        n_word = len(found)
        found += map(self._grams.__getitem__, text.split())
        # A column repeated c times stands for one feature of count c: each occurrence carries
        # (1 + log c) * idf / c, so the sums over occurrences are those over distinct features,
        # and the sum of share^2 * c over a part's occurrences is its squared norm.
        cols = np.frombuffer(b"".join(found), dtype=np.intp)
        per_count = self._per_count
        if len(per_count) <= len(cols):  # no count exceeds the number of occurrences
            per_count = self._per_count = _per_count(2 * len(cols))
        counts = np.bincount(cols)[cols]
        rows = np.take(self.table, cols, axis=0)
        share = per_count[counts]
        share *= rows[:, -1]
        weighted = share * counts
        word_sq = float(np.dot(share[:n_word], weighted[:n_word]))
        char_sq = float(np.dot(share[n_word:], weighted[n_word:]))
        if word_sq > 0.0:
            share[:n_word] *= 1.0 / math.sqrt(word_sq)
        if char_sq > 0.0:
            share[n_word:] *= 1.0 / math.sqrt(char_sq)
        scores: npt.NDArray[np.float32] = np.dot(share, rows)[:-1]
        return scores


def _per_count(size: int) -> npt.NDArray[np.float32]:
    """``(1 + log c) / c`` for c in 0..size (sublinear tf shared by c occurrences; 0 unused)."""
    count = np.arange(1, size + 1, dtype=np.float64)
    return np.concatenate([[0.0], (np.log(count) + 1.0) / count]).astype(np.float32)
