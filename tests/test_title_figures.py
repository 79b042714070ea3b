"""The title figures `recipe-repl eval` reports (issue 19): the derangement, title use (checked against a
hand-computed derangement fed word by word), title words in samples and loops. On a random-weight
ONNX model (no TensorFlow); `eval` on a trained tiny model is in test_export_eval.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from recipe_repl.export import figures
from recipe_repl.export.kneser_ney import KneserNey3

from recipe_repl.model.engine import OnnxEngine

TEXTS = [
    "Recipe for roast chicken | mix salt , add chicken and bake in oven until golden .",
    "Recipe for roast | heat oven , add pepper ; bake 2 minutes .",
    "Recipe for chicken with salt | stir 1 / 2 cup salt in with the chicken .",
    "Recipe for brown | serve .",
]


@pytest.fixture()
def engine(random_model: Path) -> OnnxEngine:
    return OnnxEngine(random_model, provider="cpu")


@pytest.mark.parametrize("n", range(2, 12))
def test_derangement_moves_every_recipe_and_is_seeded(n: int):
    for seed in range(5):
        perm = figures.derangement(n, seed)
        assert sorted(perm) == list(range(n))
        assert all(perm[i] != i for i in range(n))
        assert perm == figures.derangement(n, seed)
    assert figures.derangement(2, 0) == [1, 0]
    assert figures.derangement(1, 0) == [0] and figures.derangement(0, 0) == []


def _body_nll_word_by_word(path: Path, title: list[int], body: list[int]) -> tuple[float, int]:
    """Summed NLL of the body's targets, feeding the ONNX session one token at a time (another path than
    the batched engine.forward that `title_use` takes)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    units = sess.get_inputs()[1].shape[1]
    h = c = np.zeros((1, units), np.float32)
    seq = title + body
    nll = 0.0
    for k in range(len(seq) - 1):
        logits, h, c = sess.run(None, {"tokens": np.array([[seq[k]]], np.int32), "h0": h, "c0": c})
        if k + 1 >= len(title):
            z = logits[0, -1].astype(np.float64)
            nll -= z[seq[k + 1]] - z.max() - math.log(np.exp(z - z.max()).sum())
    return nll, len(body)


def test_title_use_matches_a_hand_computed_derangement(engine: OnnxEngine, random_model: Path):
    texts = TEXTS[:3]
    perm = figures.derangement(3, seed=4)
    assert perm in ([1, 2, 0], [2, 0, 1])  # the two derangements of three recipes: one of them, written out
    vocab = engine.vocab
    titles = [vocab.encode(t.split(" | ")[0] + " |") for t in texts]
    bodies = [vocab.encode(t.split(" | ")[1]) + [0] for t in texts]  # short recipes: the stop token ends them
    own = [_body_nll_word_by_word(random_model, titles[i], bodies[i]) for i in range(3)]
    other = [_body_nll_word_by_word(random_model, titles[perm[i]], bodies[i]) for i in range(3)]
    tokens = sum(n for _, n in own)
    expected = math.exp(sum(x for x, _ in other) / tokens) / math.exp(sum(x for x, _ in own) / tokens)

    got = figures.title_use(engine, texts, seq_len=200, seed=4, batch_size=2)
    assert got.recipes == 3 and got.body_tokens == tokens
    assert got.own_perplexity == pytest.approx(math.exp(sum(x for x, _ in own) / tokens), rel=1e-5)
    assert got.ratio == pytest.approx(expected, rel=1e-5)
    assert got.ratio != pytest.approx(1.0, abs=1e-6)  # random weights still read the title


def test_title_use_cuts_the_body_where_training_cut_the_recipe(engine: OnnxEngine):
    [(title, body)] = figures.body_items(engine.vocab, [TEXTS[0]], seq_len=8)
    assert len(title) == 5 and len(title) + len(body) == 9  # seq_len + 1 ids, and no stop token: the text was cut
    assert body[-1] != 0
    [(_, whole)] = figures.body_items(engine.vocab, [TEXTS[3]], seq_len=8)
    assert whole == engine.vocab.encode("serve .") + [0]


def test_the_3grams_title_use_differs_only_in_the_first_two_body_words(engine: OnnxEngine):
    vocab = engine.vocab
    seqs = [vocab.encode(t) + [0] for t in TEXTS]
    kn = KneserNey3(len(vocab)).fit(seqs)
    for seq in seqs:
        padded = [-1, -1, *seq]
        by_hand = [-math.log(kn.distribution(padded[i - 2], padded[i - 1])[padded[i]]) for i in range(3, len(padded))]
        assert kn.token_nlls(seq) == pytest.approx(by_hand, rel=1e-12)
    use = figures.ngram_title_use(kn.token_nlls, vocab, TEXTS, seq_len=200, seed=1)
    perm = figures.derangement(len(TEXTS), 1)
    items = figures.body_items(vocab, TEXTS, 200)
    own = other = 0.0
    for (t, b), j in zip(items, perm, strict=True):
        own += sum(kn.token_nlls(t + b)[len(t) - 1:])
        t2 = items[j][0]
        other += sum(kn.token_nlls(t2 + b)[len(t2) - 1:])
        # a 3-gram sees two words back: from the third body word on, the title no longer matters
        assert kn.token_nlls(t + b)[len(t) + 1:] == pytest.approx(kn.token_nlls(t2 + b)[len(t2) + 1:])
    assert use.ratio == pytest.approx(math.exp((other - own) / use.body_tokens))


def test_content_words_and_plural_folding(engine: OnnxEngine):
    vocab = engine.vocab
    assert figures.content_words(vocab, "Recipe for roast chicken with salt |") == {"roast", "chicken", "salt"}
    assert figures.content_words(vocab, "Recipe for the best (unknownword) |") == set()  # stop words and [UNK]
    assert figures.names_title(vocab, "recipe for roast chicken |", ["add", "chickens"]) is True
    assert figures.names_title(vocab, "recipe for roast chicken |", ["add", "salt"]) is False
    assert figures.names_title(vocab, "recipe for the |", ["the"]) is None  # no content word: not judged
    assert [figures.stem(w) for w in ("tomatoes", "berries", "peaches", "eggs", "glass", "gas")] == \
        ["tomato", "berry", "peach", "egg", "glass", "gas"]


def test_loops_are_a_4gram_three_times():
    assert figures.has_loop("a b c d a b c d a b c d".split())
    assert not figures.has_loop("a b c d a b c d x".split())
    assert figures.has_loop(list("aaaaaa"))  # overlapping occurrences count: "aaaa" three times
    assert not figures.has_loop([1, 2, 3])


def test_sample_figures_are_seeded_and_count_the_data_by_hand(engine: OnnxEngine):
    rep = figures.sample_figures(engine, TEXTS, seed=3, temperatures=(1.0, 0.2), max_tokens=30, batch_size=3)
    again = figures.sample_figures(engine, TEXTS, seed=3, temperatures=(1.0, 0.2), max_tokens=30, batch_size=4)
    assert figures.as_dict(rep) == figures.as_dict(again)  # seeded, and the batch size changes nothing
    # the data, by hand: recipe 1 names "chicken", recipe 2 never says "roast", recipe 3 names "chicken"
    # and "salt", recipe 4's title "brown" is not in its body
    assert (rep.data_with_title_words, rep.data_judged, rep.data_loops) == (2, 4, 0)
    assert rep.data_title_share == 0.5
    for f in rep.per_temperature:
        assert f.samples == 4 and f.judged == 4
        assert 0 <= f.with_title_words <= 4 and 0 <= f.loops <= 4
    pooled = figures.pool([rep, again])
    assert pooled.titles == 8 and pooled.per_temperature[0].samples == 8
    assert pooled.data_title_share == 0.5
    d = figures.as_dict(rep)
    assert d["per_temperature"][1]["temperature"] == 0.2 and "loop_share" in d["per_temperature"][1]


def test_pick_titles_is_seeded_and_keeps_order():
    texts = [f"Recipe for t{i} | b" for i in range(50)]
    picked = figures.pick_titles(texts, 10, seed=2)
    assert picked == figures.pick_titles(texts, 10, seed=2) and len(picked) == 10
    assert picked == sorted(picked, key=texts.index)
    assert figures.pick_titles(texts[:3], 10, seed=2) == texts[:3]


def test_title_word_use_scores_only_the_words_that_name_the_title(engine: OnnxEngine, random_model: Path):
    texts = TEXTS[:3]
    perm = figures.derangement(3, seed=0)
    vocab = engine.vocab
    titles = [vocab.encode(t.split(" | ")[0] + " |") for t in texts]
    bodies = [vocab.encode(t.split(" | ")[1]) + [0] for t in texts]
    named = [figures.content_words(vocab, t.split(" | ")[0]) for t in texts]

    def nll(title: list[int], i: int) -> tuple[float, int]:
        sess = ort.InferenceSession(str(random_model), providers=["CPUExecutionProvider"])
        logits, _, _ = sess.run(None, {"tokens": np.array([title + bodies[i]], np.int32),
                                       "h0": np.zeros((1, 16), np.float32), "c0": np.zeros((1, 16), np.float32)})
        z = logits[0].astype(np.float64)
        logp = z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
        total, n = 0.0, 0
        for k, w in enumerate(bodies[i]):
            if figures.stem(vocab.words[w]) in named[i]:
                total -= logp[len(title) - 1 + k, w]
                n += 1
        return total, n

    own = [nll(titles[i], i) for i in range(3)]
    other = [nll(titles[perm[i]], i) for i in range(3)]
    n = sum(k for _, k in own)
    assert n == 3  # by hand: "chicken" in recipe 1, none in recipe 2, "salt" and "chicken" in recipe 3
    got = figures.title_word_use(engine, texts, seq_len=200, seed=0)
    assert got.body_tokens == n
    assert got.ratio == pytest.approx(math.exp((sum(x for x, _ in other) - sum(x for x, _ in own)) / n), rel=1e-5)
