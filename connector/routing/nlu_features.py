"""The default tier's per-message arithmetic, without scikit-learn's per-call overhead.

Per message, Python and numpy call overheads cost more than the arithmetic, and most of a
message's features belong to its words: so what each whitespace-separated chunk of a message
adds (its ``char_wb`` n-grams' part of the scores, its static vectors' part and their sum) is
computed once, when the chunk is first seen, and kept packed as bytes, as is each word
(1, 2)-gram's part. A message then costs one join of its rows' bytes and one weighted sum
(:class:`MessageScores`).

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
    """Word (1, 2)-gram id -> its idf times its coefficients, packed as float32 bytes when
    the n-gram is first seen, ``width`` long: zeros after the intents, so that its row sums
    with the chunks' rows (:class:`MessageScores`)."""

    def __init__(self, terms: list[str], weights: _Floats, idf: _Floats, width: int) -> None:
        super().__init__()
        self.terms = {t: i for i, t in enumerate(terms)}
        self.table = _table(weights, idf)
        self.idf: list[float] = self.table[:, -1].astype(np.float64).tolist()
        self._zeros = bytes(4 * (width - int(weights.shape[1])))

    def __missing__(self, term: int) -> bytes:
        if len(self) >= _CHUNK_CACHE_MAX:
            self.clear()
        row = self.table[term]
        packed: bytes = (row[:-1] * row[-1]).tobytes() + self._zeros
        self[term] = packed
        return packed


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


class MessageScores:
    """A message's scores but the intercept: its word n-grams' unit-length tf-idf times the
    coefficients, the mean of its chunks' char parts, and its static part (the chunks'
    static parts over the length of their summed token vectors), all from one sum.

    Each row (a word n-gram's, a chunk's) is packed once it is first seen; a message is then
    one join of its rows' bytes and one product: a weight per row (the word n-grams' tf-idf
    scale, one over the number of chunks) times the rows. The static part's ratio does not
    change with the chunks' common weight."""

    def __init__(self, words: WordScores, chunks: ChunkScores, fold: Callable[[str], str]) -> None:
        self._words = words
        self._chunks = chunks
        self._fold = fold
        self._n = chunks.intents
        self._width = chunks.width

    def scores(self, text: str) -> _F32 | None:
        """None when the message has neither a known n-gram nor a chunk."""
        words = _WORDS.findall(self._fold(text))
        terms = self._words.terms
        counts: dict[int, int] = {}
        for i in map(terms.get, chain(words, map(" ".join, pairwise(words)))):
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        chunks = text.split()
        if not counts and not chunks:
            return None
        weights: list[float] = []
        if counts:
            idf = self._words.idf
            if len(counts) == sum(counts.values()):  # each once (the usual): tf 1 each
                scale = 1.0 / math.sqrt(math.fsum(idf[i] * idf[i] for i in counts))
                weights = [scale] * len(counts)
            else:
                tf = [1.0 + math.log(c) for c in counts.values()]
                squared = math.fsum((t * idf[i]) ** 2 for t, i in zip(tf, counts, strict=True))
                scale = 1.0 / math.sqrt(squared)
                weights = [t * scale for t in tf]
        if chunks:
            weights += [1.0 / len(chunks)] * len(chunks)
        blob = b"".join(
            [*map(self._words.__getitem__, counts), *map(self._chunks.__getitem__, chunks)]
        )
        rows = np.frombuffer(blob, dtype=np.float32).reshape(len(weights), self._width)
        total: _F32 = np.array(weights, dtype=np.float32) @ rows
        n = self._n
        scores = total[:n]
        vectors = total[2 * n :]
        squared = float(vectors @ vectors)
        if squared > 0.0:
            scores += total[n : 2 * n] * (1.0 / math.sqrt(squared))
        return scores
