"""The default tier's per-message arithmetic, without scikit-learn's per-call overhead.

Per message, Python and numpy call overheads cost more than the arithmetic, and most of a
message's features belong to its words: so what each whitespace-separated chunk of a message
adds (its ``char_wb`` n-grams' part of the scores, its static vectors' part and their sum) is
computed once, when the chunk is first seen, and kept packed as bytes. A message then costs one
join of its chunks' bytes, one sum, and the few word (1, 2)-grams it has.

The features (``nlu_default`` trains on the same ones): the sublinear tf-idf of the message's
word (1, 2)-grams, of unit length; the mean over its chunks of each chunk's sublinear
``char_wb`` (1, 4)-gram tf-idf, each of unit length; the sum of its tokens' static vectors,
scaled to unit length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from itertools import chain, pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from connector.routing.nlu_static import StaticEmbeddings

WORD_PATTERN = r"(?u)\b\w\w+\b"
"""Words as scikit-learn's ``TfidfVectorizer`` finds them by default."""
_WORDS = re.compile(WORD_PATTERN)
_CHUNK_CACHE_MAX = 10_000  # about 2 KB each for 150 intents
_F32 = npt.NDArray[np.float32]
_Array = npt.NDArray[np.float64]
_Floats = npt.NDArray[np.floating[Any]]


def _table(weights: _Floats, idf: _Floats) -> _F32:
    """One row per feature: its weights, then its idf, so that one gather brings both.
    float32: half the bytes to gather, scores within about 1e-6 of float64 ones."""
    table = np.empty((idf.shape[0], weights.shape[1] + 1), dtype=np.float32)
    table[:, :-1], table[:, -1] = weights, idf
    return table


def _tfidf_dot(ids: list[int], table: _F32) -> _F32 | None:
    """Unit-length sublinear tf-idf of these feature occurrences, times the weights in
    ``table`` (one more column at the end: the idf); None when there are none."""
    if not ids:
        return None
    counts: dict[int, int] = {}
    for i in ids:
        counts[i] = counts.get(i, 0) + 1
    rows = table[list(counts)]
    values = np.array([1.0 + math.log(c) for c in counts.values()], dtype=np.float32)
    values *= rows[:, -1]
    values *= 1.0 / math.sqrt(float(values @ values))
    scores: _F32 = (values @ rows)[:-1]
    return scores


class WordScores(dict[int, bytes]):
    """A message's word (1, 2)-gram tf-idf (unit length) times the coefficients.

    Each n-gram's idf times its coefficients is kept packed (float32 bytes) once the n-gram
    is first seen, so that a message is one join of its n-grams' bytes and one sum: where a
    gather from the table (``_tfidf_dot``) took seven numpy calls a message."""

    def __init__(self, terms: list[str], weights: _Floats, idf: _Floats) -> None:
        super().__init__()
        self._terms = {t: i for i, t in enumerate(terms)}
        self.table = _table(weights, idf)
        self._idf: list[float] = self.table[:, -1].astype(np.float64).tolist()
        self._intents = int(weights.shape[1])

    def __missing__(self, term: int) -> bytes:
        if len(self) >= _CHUNK_CACHE_MAX:
            self.clear()
        row = self.table[term]
        packed: bytes = (row[:-1] * row[-1]).tobytes()
        self[term] = packed
        return packed

    def scores(self, folded: str) -> _F32 | None:
        """The part of the scores of a normalized message; None if it has no known n-gram."""
        words = _WORDS.findall(folded)
        counts: dict[int, int] = {}
        for i in map(self._terms.get, chain(words, map(" ".join, pairwise(words)))):
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return None
        blob = b"".join(map(self.__getitem__, counts))
        rows = np.frombuffer(blob, dtype=np.float32).reshape(len(counts), self._intents)
        idf = self._idf
        if len(counts) == sum(counts.values()):  # each once (the usual): tf 1 each
            squared = math.fsum(idf[i] * idf[i] for i in counts)
            scores: _F32 = rows.sum(axis=0)
        else:
            tf = [1.0 + math.log(c) for c in counts.values()]
            squared = math.fsum((t * idf[i]) ** 2 for t, i in zip(tf, counts, strict=True))
            scores = np.array(tf, dtype=np.float32) @ rows
        scores *= 1.0 / math.sqrt(squared)
        return scores


def char_grams(folded: str, ngrams: tuple[int, int]) -> list[str]:
    """The ``char_wb`` n-grams of a normalized text, as scikit-learn's analyzer cuts them."""
    low, high = ngrams
    grams = []
    for word in folded.split():
        padded = f" {word} "
        grams += [padded[i : i + n] for n in range(low, high + 1)
                  for i in range(len(padded) - n + 1)]  # fmt: skip
    return grams


class ChunkScores(dict[str, bytes]):
    """Chunk -> packed float32 ``[char part | static part | token vector sum]`` (intents,
    intents, static dims), computed when the chunk is first seen."""

    def __init__(
        self,
        char_terms: list[str],
        char_weights: _Floats,
        char_idf: _Floats,
        static: StaticEmbeddings,
        dense: _Array,
        *,
        ngrams: tuple[int, int],
        fold: Callable[[str], str],
    ) -> None:
        super().__init__()
        self._columns = {t: i for i, t in enumerate(char_terms)}
        self.table = _table(char_weights, char_idf)
        self._static = static
        self._dense = dense.astype(np.float32)
        self._ngrams = ngrams
        self._fold = fold
        self.intents = int(dense.shape[1])
        self.width = 2 * self.intents + static.dims

    def __missing__(self, chunk: str) -> bytes:
        if len(self) >= _CHUNK_CACHE_MAX:
            self.clear()
        n = self.intents
        out = np.zeros(self.width, dtype=np.float32)
        grams = char_grams(self._fold(chunk), self._ngrams)
        char = _tfidf_dot([i for i in map(self._columns.get, grams) if i is not None], self.table)
        if char is not None:
            out[:n] = char
        rows = self._static.rows(chunk)
        if len(rows):
            total = self._static.vectors[rows].sum(axis=0)
            out[n : 2 * n], out[2 * n :] = total @ self._dense, total
        self[chunk] = packed = out.tobytes()
        return packed

    def scores(self, text: str) -> _F32 | None:
        """What the chunks of a raw message add to its scores; None if it has no chunk."""
        chunks = text.split()
        if not chunks:
            return None
        blob = b"".join(map(self.__getitem__, chunks))
        total = np.frombuffer(blob, dtype=np.float32).reshape(len(chunks), self.width).sum(axis=0)
        n = self.intents
        scores: _F32 = total[:n]
        scores *= 1.0 / len(chunks)
        vectors = total[2 * n :]
        squared = float(vectors @ vectors)
        if squared > 0.0:
            scores += total[n : 2 * n] * (1.0 / math.sqrt(squared))
        return scores
