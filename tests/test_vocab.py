"""Tokenizer and detokenizer behaviour (parity with Keras TextVectorization is in test_train_*)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipe_repl.model.vocab import UNK_ID, Vocabulary, detokenize, pad_punctuation, split_words, standardize


def vocab() -> Vocabulary:
    return Vocabulary.from_list(["", "[UNK]", "recipe", "for", "roast", ",", ".", "1", "/", "2", "cup", "école"])


def test_pad_punctuation_is_the_lectures() -> None:
    assert pad_punctuation("Mix 1/2 cup, then bake.") == "Mix 1 / 2 cup , then bake . "
    assert pad_punctuation("a  b") == "a b"
    # The lecture's character class escapes `]` with the backslash, so a backslash is left alone.
    assert pad_punctuation("a\\b") == "a\\b"


def test_lowercase_is_ascii_only_like_tf_strings_lower() -> None:
    assert standardize("ÉCOLE Шаг ABC") == "École Шаг abc"
    assert standardize("ÉCOLE Шаг", lowercase="unicode") == "école шаг"


def test_split_on_ascii_whitespace_only() -> None:
    assert split_words(" a\tb\nc\u00a0d  ") == ["a", "b", "c\u00a0d"]


def test_encode_maps_unknown_words_to_unk() -> None:
    v = vocab()
    assert v.encode("Recipe for ROAST, tofu.") == [2, 3, 4, 5, UNK_ID, 6]
    assert v.unknown_words("recipe for tofu") == ["tofu"]
    assert "recipe" in v and "tofu" not in v and "[UNK]" not in v


def test_vocabulary_must_start_with_pad_and_unk() -> None:
    with pytest.raises(ValueError):
        Vocabulary.from_list(["a", "b"])


def test_word_out_of_range_is_an_index_error() -> None:
    with pytest.raises(IndexError):
        vocab().word(99)


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        ("1 / 2 cup , chopped .", "1/2 cup, chopped."),
        ("recipe for roast | preheat oven .", "Recipe for roast | Preheat oven."),
        ("don ' t stir ( gently ) ; serve", "Don't stir (gently); serve"),
        ("a 1 - inch piece . then stir !", "A 1-inch piece. Then stir!"),
        ("[UNK] and [bold] words", "[UNK] and [bold] words"),
    ],
)
def test_detokenize(tokens: str, text: str) -> None:
    assert detokenize(tokens.split()) == text


def test_detokenize_keeps_raw_view_possible() -> None:
    words = "1 / 2 cup".split()
    assert detokenize(words, capitalize=False) == "1/2 cup"
    assert " ".join(words) == "1 / 2 cup"


_TOKENS = ["", "a", "b", "x1", "1", "2", "|", ".", ",", "/", "-", "'", "(", ")", "$", "#", "!", "?", "%",
           "[UNK]", "ab.", "é", "Z", ":", ";", "[", "]", "{", "}", "step"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=12))
def test_detokenize_pieces_join_to_the_text_and_capitalize_sentences(words) -> None:
    import re

    from recipe_repl.model.vocab import detokenize_pieces

    pieces = detokenize_pieces(words)
    assert len(pieces) == len(words) and "".join(pieces) == detokenize(words)
    plain = detokenize(words, capitalize=False)
    sentence_start = re.compile(r"(^|[.!?|]\s+)([a-z])")
    assert detokenize(words) == sentence_start.sub(lambda m: m.group(1) + m.group(2).upper(), plain)
