"""The static word vectors: BERT's tokenization in plain Python, and message vectors."""

from __future__ import annotations

import numpy as np
import pytest

from connector.routing.nlu_static import StaticEmbeddings, basic_words, packaged, wordpiece


@pytest.fixture(scope="module")
def static() -> StaticEmbeddings:
    return packaged()


def test_words_are_lowercased_unaccented_and_split_at_punctuation() -> None:
    assert basic_words("Hello, WORLD! Caf\u00e9 na\u00efve") == [
        "hello", ",", "world", "!", "cafe", "naive",
    ]  # fmt: skip


def test_control_characters_are_dropped_and_ideographs_split() -> None:
    assert basic_words("x\x00y tab\tend \u65e5\u672c\u8a9e") == [
        "xy", "tab", "end", "\u65e5", "\u672c", "\u8a9e",
    ]  # fmt: skip
    assert basic_words("\x00\x01\ufeff") == []


def test_wordpiece_takes_the_longest_known_piece_first(static: StaticEmbeddings) -> None:
    vocab = {t: i for i, t in enumerate(static.tokens)}
    assert [static.tokens[i] for i in wordpiece("refund", vocab)] == ["ref", "##und"]
    assert [static.tokens[i] for i in wordpiece("transferring", vocab)] == ["transferring"]


def test_a_word_with_an_unknown_piece_or_too_long_is_dropped(static: StaticEmbeddings) -> None:
    vocab = {t: i for i, t in enumerate(static.tokens)}
    assert wordpiece("ab\U0001f600", vocab) == []
    assert wordpiece("a" * 101, vocab) == []


def test_a_message_vector_has_unit_length(static: StaticEmbeddings) -> None:
    vector = static.embed("where is my refund?")
    assert vector.shape == (static.dims,)
    assert np.linalg.norm(vector) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["", "   ", "\U0001f600\U0001f600", "\x00\x01"])
def test_a_message_without_known_tokens_has_a_zero_vector(
    static: StaticEmbeddings, text: str
) -> None:
    assert not static.embed(text).any()


def test_the_shipped_table_has_one_vector_per_token(static: StaticEmbeddings) -> None:
    assert static.vectors.shape == (len(static.tokens), static.dims) == (len(static.tokens), 256)
    assert len(set(static.tokens)) == len(static.tokens)
    with pytest.raises(ValueError, match="one vector per token"):
        StaticEmbeddings(static.tokens[:-1], static.vectors)
