"""Static word vectors for the default classifier tier: a WordPiece lookup, a mean, no model.

The vectors were distilled once from all-MiniLM-L6-v2 (``scripts/distill_static.py``): each
token of its vocabulary was embedded by the model, reduced by PCA and weighted by frequency, as
model2vec does. A message's vector is then the mean of its tokens' vectors, scaled to unit
length. Tokenization is the model's own (BERT's uncased basic tokenizer, then greedy longest-
match WordPiece) in plain Python, so the default install needs neither torch nor a tokenizer
library. The packaged table holds 4-bit integers with one scale per token (under 4 MB); it is
read once per process.
"""

from __future__ import annotations

import functools
import hashlib
import math
import unicodedata
from pathlib import Path

import numpy as np
import numpy.typing as npt

PACKAGED = Path(__file__).with_name("data") / "static_minilm.npz"
_MAX_WORD = 100  # WordPiece's max_input_chars_per_word: longer words are unknown
_WORD_CACHE_MAX = 50_000
_Array = npt.NDArray[np.float64]
# ASCII control characters are dropped (tab and newlines are spaces), as BERT cleans text.
_ASCII_CLEAN = {**dict.fromkeys([*range(32), 127]), 9: " ", 10: " ", 13: " "}


def _is_punctuation(char: str) -> bool:
    """BERT's rule: ASCII symbols count as punctuation, as does every Unicode P* category."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B81F
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_words(text: str) -> list[str]:
    """BERT's uncased pre-tokenization: drop control characters, lowercase, strip accents,
    split on whitespace, punctuation and around CJK ideographs."""
    if text.isascii():
        out: list[str] = []
        for chunk in text.lower().translate(_ASCII_CLEAN).split():
            if chunk.isalnum():
                out.append(chunk)
            else:
                out.extend(_split_punctuation(chunk))
        return out
    chars = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD:
            continue
        if char in "\t\n\r" or unicodedata.category(char) == "Zs":
            chars.append(" ")
        elif unicodedata.category(char).startswith("C"):
            continue
        elif _is_cjk(cp):
            chars.append(f" {char} ")
        else:
            chars.append(char)
    words: list[str] = []
    for chunk in "".join(chars).lower().split():
        chunk = "".join(
            c for c in unicodedata.normalize("NFD", chunk) if unicodedata.category(c) != "Mn"
        )
        words.extend(_split_punctuation(chunk))
    return words


def _split_punctuation(chunk: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for i, char in enumerate(chunk):
        if _is_punctuation(char):
            if start < i:
                parts.append(chunk[start:i])
            parts.append(char)
            start = i + 1
    if start < len(chunk):
        parts.append(chunk[start:])
    return parts


class _WordRows(dict[str, bytes]):
    """Word -> the rows of its WordPiece tokens, packed as ``intp`` bytes (b"" when unknown:
    model2vec drops unknown tokens too); computed when a word is first seen."""

    def __init__(self, vocab: dict[str, int]) -> None:
        super().__init__()
        self._vocab = vocab

    def __missing__(self, word: str) -> bytes:
        if len(self) >= _WORD_CACHE_MAX:
            self.clear()
        self[word] = packed = np.array(wordpiece(word, self._vocab), dtype=np.intp).tobytes()
        return packed


def wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    """Greedy longest-match-first WordPiece; a word with an unknown piece is dropped whole."""
    if len(word) > _MAX_WORD:
        return []
    ids: list[int] = []
    start, end_of_word = 0, len(word)
    while start < end_of_word:
        end = end_of_word
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            found = vocab.get(piece)
            if found is not None:
                ids.append(found)
                break
            end -= 1
        else:
            return []
        start = end
    return ids


class StaticEmbeddings:
    """A token vocabulary and one vector per token; ``embed`` gives a unit-length message vector
    (all zeros when no token is known)."""

    def __init__(self, tokens: list[str], vectors: npt.NDArray[np.float32]) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(tokens):
            raise ValueError("one vector per token expected")
        self.tokens = tokens
        self.vectors = vectors
        self.dims = int(vectors.shape[1])
        self._rows = _WordRows({t: i for i, t in enumerate(tokens)})
        digest = hashlib.sha256("\n".join(tokens).encode("utf-8"))
        digest.update(np.ascontiguousarray(vectors).tobytes())
        self.fingerprint = digest.hexdigest()

    @classmethod
    def load(cls, path: Path = PACKAGED) -> StaticEmbeddings:
        """Read a table written by ``scripts/distill_static.py``: tokens, 4-bit rows, scales."""
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            tokens = npz["tokens"].tobytes().decode("utf-8").split("\n")
            vectors = unpack(npz["packed"], npz["scales"])
        return cls(tokens, vectors)

    def rows(self, text: str) -> npt.NDArray[np.intp]:
        """The vocabulary rows of a message's tokens, in order."""
        return np.frombuffer(
            b"".join(map(self._rows.__getitem__, basic_words(text))), dtype=np.intp
        )

    def embed(self, text: str) -> _Array:
        """The message's unit-length mean token vector (float64, ``dims`` long)."""
        rows = self.rows(text)
        if not len(rows):
            return np.zeros(self.dims)
        mean: _Array = np.take(self.vectors, rows, axis=0).sum(axis=0, dtype=np.float64)
        norm = math.sqrt(float(mean @ mean))
        if norm > 0.0:
            mean *= 1.0 / norm
        return mean

    def embed_many(self, texts: list[str]) -> _Array:
        """``embed`` of each text, one row each."""
        out = np.zeros((len(texts), self.dims))
        for i, text in enumerate(texts):
            out[i] = self.embed(text)
        return out


def unpack(
    packed: npt.NDArray[np.uint8], scales: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Rows of two 4-bit levels (1..15, 8 is zero) a byte, times each row's scale."""
    levels = np.empty((packed.shape[0], 2 * packed.shape[1]), dtype=np.float32)
    levels[:, 0::2], levels[:, 1::2] = packed >> 4, packed & 15
    levels -= 8.0
    levels *= np.asarray(scales, dtype=np.float32)[:, None]
    return levels


@functools.cache
def packaged_digest() -> str:
    """sha256 of the shipped table's file: part of every default-tier model's cache key."""
    return hashlib.sha256(PACKAGED.read_bytes()).hexdigest()


@functools.cache
def packaged() -> StaticEmbeddings:
    """The table shipped with midtier, read on first use and shared by every classifier."""
    return StaticEmbeddings.load(PACKAGED)
