"""Tokenization parity (runtime Vocabulary vs the adapted Keras TextVectorization), splits, batches, weights."""

from __future__ import annotations

import numpy as np
import pytest
from recipe_repl.train import preprocess
from recipe_repl.train.corpus import load_corpus

from recipe_repl.model.vocab import Vocabulary
from tests.tiny import EPICURIOUS_SAMPLE


def _parity(texts: list[str], lowercase: str, vocab_size: int = 10000) -> Vocabulary:
    """Adapt the training vectorizer on `texts`, then check Vocabulary.encode gives the same ids for each."""
    layer = preprocess.adapt_vectorizer(texts, vocab_size, seq_len=4000, lowercase=lowercase)
    vocab = Vocabulary.from_list(layer.get_vocabulary(), lowercase=lowercase)
    ids = preprocess.vectorize(layer, texts, lowercase)
    assert ids.shape[1] == 4001
    for row, text in zip(ids, texts, strict=True):
        expected = vocab.encode(text)
        assert len(expected) < 4000, "raise seq_len: the test must not truncate"
        assert row[: len(expected)].tolist() == expected
        assert not row[len(expected):].any()
    return vocab


@pytest.mark.slow
def test_tokenization_parity_epicurious_sample():
    texts = load_corpus(f"epicurious:{EPICURIOUS_SAMPLE}").texts
    vocab = _parity(texts, "ascii")
    assert vocab.words[:2] == ("", "[UNK]")
    # a small vocabulary forces [UNK]s: parity must hold for them too
    small = _parity(texts, "ascii", vocab_size=50)
    assert len(small) == 50 and any(i == 1 for t in texts for i in small.encode(t))


@pytest.mark.slow
def test_tokenization_parity_whole_builtin_corpus():
    texts = load_corpus("builtin").texts
    vocab = _parity(texts, "ascii")
    assert "recipe" in vocab and "|" in vocab and "Recipe" not in vocab


@pytest.mark.slow
def test_tokenization_parity_cyrillic_unicode_lowercase():
    corpus = load_corpus("builtin:ru")
    vocab = _parity(corpus.texts, corpus.lowercase, vocab_size=3000)
    assert len(vocab) == 3000  # the Russian corpus has ~6,400 words: [UNK]s are in play
    assert "шаг" in vocab and "Шаг" not in vocab  # lowered in Python; tf.strings.lower would keep "Шаг"


def test_split_is_seeded_and_disjoint():
    texts = [f"recipe {i}" for i in range(100)]
    a_train, a_val = preprocess.split_texts(texts, 0.1, seed=3)
    b_train, b_val = preprocess.split_texts(texts, 0.1, seed=3)
    c_train, c_val = preprocess.split_texts(texts, 0.1, seed=4)
    assert (a_train, a_val) == (b_train, b_val)
    assert a_val != c_val
    assert len(a_val) == 10 and sorted(a_train + a_val) == sorted(texts)
    assert preprocess.split_texts(["a", "b"], 0.01, 0)[1] != []  # at least one held-out text
    assert preprocess.split_texts(texts, 0.0, 0) == (texts, [])


def _ids(lengths: list[int], width: int) -> np.ndarray:
    ids = np.zeros((len(lengths), width), np.int32)
    for r, n in enumerate(lengths):
        ids[r, :n] = np.arange(2, n + 2)
    return ids


def test_masked_weights_count_up_to_the_first_stop_token():
    ids = _ids([3, 6, 1], width=6)  # seq_len 5; the second text fills all 6 slots (truncated)
    w = preprocess.loss_weights(ids, mask=True)
    # targets are ids[:, 1:]: text 0 has targets [t1, t2, 0(stop), 0, 0] -> the first stop counts
    assert w.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert preprocess.loss_weights(ids, mask=False).sum() == 15


def test_bucketed_batches_cover_every_text_with_less_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=500).tolist()
    ids = _ids(lengths, width=201)
    fixed = preprocess.fixed_batches(ids, 32, mask=True, shuffle_seed=1)
    bucketed = preprocess.bucketed_batches(ids, 32, shuffle_seed=1)
    assert sum(b.x.shape[0] for b in bucketed) == 500
    # the same targets and weights, just without most of the padding
    assert sum(b.w.sum() for b in bucketed) == sum(b.w.sum() for b in fixed) == sum(min(n, 200) for n in lengths)
    seen = sorted(tuple(row[row > 0].tolist()) for b in bucketed for row in b.x)
    assert seen == sorted(tuple(row[row > 0].tolist()) for b in fixed for row in b.x)
    padded_fixed = sum(b.x.size for b in fixed)
    padded_bucketed = sum(b.x.size for b in bucketed)
    assert padded_bucketed < 0.6 * padded_fixed
    for b in bucketed:
        assert b.x.shape == b.y.shape == b.w.shape
        assert (b.y[:, :-1] == b.x[:, 1:]).all()  # targets are the inputs shifted by one
    # shuffling is seeded
    again = preprocess.bucketed_batches(ids, 32, shuffle_seed=1)
    assert all((a.x == b.x).all() for a, b in zip(bucketed, again, strict=True))


def test_word_dropout_hides_body_words_only_and_is_seeded():
    x = np.array([[5, 6, 9, 7, 8, 7, 8, 0], [5, 9, 7, 7, 7, 7, 0, 0]], np.int32)  # 9 is the title's "|"
    batches = [preprocess.Batch(x, x[:, ::-1].copy(), np.ones_like(x, np.float32))]
    out = preprocess.drop_words(batches, 0.5, separator=9, seed=0)[0]
    assert (out.x[:, :2] == x[:, :2]).all() and out.x[0, 2] == 9  # the title and the separator stay
    assert (out.x[x == 0] == 0).all()  # padding stays padding
    changed = out.x != x
    assert changed.any() and (out.x[changed] == 1).all()  # hidden words read as [UNK]
    assert (out.y == batches[0].y).all() and (out.w == batches[0].w).all()  # targets and weights untouched
    again = preprocess.drop_words(batches, 0.5, separator=9, seed=0)[0]
    assert (again.x == out.x).all()
    assert preprocess.drop_words(batches, 0.0, 9, 0) is batches
    no_title = [preprocess.Batch(np.full((4, 20), 4, np.int32), x[:, :1], x[:, :1])]
    assert (preprocess.drop_words(no_title, 0.9, separator=9, seed=1)[0].x == 4).all()  # no "|": no body to hide
