"""The sampler: each processor, the temperature equivalence with the lecture, and sampled frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate import fast_draw, sampling
from recipe_repl.model.vocab import Vocabulary

VOCAB = Vocabulary.from_list(["", "[UNK]", "a", "b", "c", "d"])
LOGITS = np.array([[0.5, 2.0, 1.0, 0.0, -1.0, 3.0]])


def probs_for(settings: Settings, plugins, logits: np.ndarray = LOGITS, history=((),)) -> np.ndarray:
    return sampling.Sampler(settings, plugins.processor_specs(), VOCAB).distribution(logits, history)


@pytest.mark.parametrize("t", [0.2, 0.5, 1.0, 2.0])
def test_temperature_matches_the_lectures_power_rule(plugins, t: float) -> None:
    p = sampling.softmax(LOGITS)
    lecture = p ** (1 / t)
    lecture /= lecture.sum()
    np.testing.assert_allclose(probs_for(Settings(temperature=t), plugins), lecture, rtol=1e-6)


def test_temperature_zero_is_greedy(plugins) -> None:
    p = probs_for(Settings(temperature=0), plugins)
    assert p.argmax() == 5 and p.max() == 1.0 and p.sum() == 1.0
    sampler = sampling.Sampler(Settings(temperature=0), plugins.processor_specs(), VOCAB)
    rng = sampling.row_rng(1, 0)
    state = rng.bit_generator.state
    assert sampler.greedy and int(sampler.choose(p, [rng])[0]) == 5
    assert rng.bit_generator.state == state  # greedy never consumes randomness


def test_greedy_is_decided_by_the_temperature_alone(plugins) -> None:
    # top-k, top-p and a ban still shape the greedy choice: the top word *after* them
    p = probs_for(Settings(temperature=0, allow_unk=False), plugins)
    assert p.argmax() == 5
    p = probs_for(Settings(temperature=0), plugins, logits=np.array([[0.5, 4.0, 1.0, 0.0, -1.0, 3.0]]))
    assert p.argmax() == 1
    p = probs_for(Settings(temperature=0, allow_unk=False), plugins,
                  logits=np.array([[0.5, 4.0, 1.0, 0.0, -1.0, 3.0]]))
    assert p.argmax() == 5
    assert not sampling.is_greedy(Settings(temperature=0.01)) and sampling.is_greedy(Settings(temperature=0))


def test_top_k_keeps_k_words(plugins) -> None:
    p = probs_for(Settings(top_k=2), plugins)
    assert set(np.flatnonzero(p[0])) == {1, 5}
    np.testing.assert_allclose(p.sum(), 1.0)


def test_top_p_keeps_the_smallest_nucleus(plugins) -> None:
    full = sampling.softmax(LOGITS)[0]
    # top word (id 5) has ~0.61; with p=0.6 only it is needed, with p=0.7 the second joins.
    assert full[5] > 0.6
    assert set(np.flatnonzero(probs_for(Settings(top_p=0.6), plugins)[0])) == {5}
    assert set(np.flatnonzero(probs_for(Settings(top_p=0.7), plugins)[0])) == {5, 1}


def test_min_p_drops_unlikely_words(plugins) -> None:
    p = probs_for(Settings(min_p=0.3), plugins)[0]
    full = sampling.softmax(LOGITS)[0]
    kept = set(np.flatnonzero(p))
    assert kept == {i for i in range(6) if full[i] >= 0.3 * full.max()}


def test_ban_unk(plugins) -> None:
    assert probs_for(Settings(allow_unk=False), plugins)[0, 1] == 0.0
    assert probs_for(Settings(allow_unk=True), plugins)[0, 1] > 0.0


def test_repetition_penalty_lowers_seen_words(plugins) -> None:
    base = probs_for(Settings(), plugins)[0]
    pen = probs_for(Settings(repetition_penalty=2.0), plugins, history=([5, 4],))[0]
    assert pen[5] < base[5] and pen[4] < base[4] and pen[2] > base[2]


def test_unknown_use_processor_is_a_user_error(plugins) -> None:
    with pytest.raises(UserError, match="unknown processor"):
        sampling.build_chain(plugins.processor_specs(), Settings(use=(("nope", ()),)), VOCAB)


def test_default_settings_build_an_empty_chain(plugins) -> None:
    # T=1, no top-k/p: the hot path runs no processor at all.
    assert sampling.build_chain(plugins.processor_specs(), Settings(), VOCAB) == []


def test_draw_is_seeded_and_never_picks_zero_probability() -> None:
    p = np.array([[0.0, 0.5, 0.0, 0.5]])
    rng_a, rng_b = sampling.row_rng(7, 3), sampling.row_rng(7, 3)
    a = [int(fast_draw.draw(p, [rng_a])[0]) for _ in range(200)]
    b = [int(fast_draw.draw(p, [rng_b])[0]) for _ in range(200)]
    assert a == b and set(a) == {1, 3}


def test_draw_is_the_inverse_cdf_and_batch_independent() -> None:
    """Each row gets its plain inverse-CDF word, in a batch (vectorized path) and alone (scalar path)."""
    gen = np.random.default_rng(0)
    probs = gen.random((9, 300)).astype(np.float32) ** 4
    probs[:, gen.random(300) < 0.3] = 0  # impossible words in every block
    probs[3, :] = 0
    probs[3, 299] = 1  # all mass on the very last word
    probs /= probs.sum(axis=1, keepdims=True)
    for trial in range(50):
        seeds = [sampling.row_rng(trial, r) for r in range(9)]
        u = [sampling.row_rng(trial, r).random() for r in range(9)]
        together = fast_draw.draw(probs, seeds)
        alone = [int(fast_draw.draw(probs[r : r + 1], [sampling.row_rng(trial, r)])[0]) for r in range(9)]
        assert together.tolist() == alone
        for r in range(9):
            cdf = np.cumsum(probs[r].astype(np.float64))
            expected = int(np.searchsorted(cdf, u[r] * cdf[-1], side="right"))
            assert together[r] == expected and probs[r, together[r]] > 0


@pytest.mark.parametrize("t", [0.5, 1.0, 1.7])
def test_sampled_frequencies_follow_softmax_of_logits_over_t(plugins, t: float) -> None:
    """A chi-square goodness-of-fit test of 20 000 draws (critical value at p=0.001, 5 dof = 20.5)."""
    settings = Settings(temperature=t)
    probs = probs_for(settings, plugins)
    expected = sampling.softmax(LOGITS / t)[0]
    rng = sampling.row_rng(12345, 0)
    n = 20_000
    counts = np.bincount([int(fast_draw.draw(probs, [rng])[0]) for _ in range(n)], minlength=6)
    chi2 = float((((counts - n * expected) ** 2) / (n * expected)).sum())
    assert chi2 < 20.5, (counts, expected)


def test_settings_validation() -> None:
    with pytest.raises(UserError):
        Settings().replace(temperature=6)
    with pytest.raises(UserError):
        Settings().replace(top_p=0)
    with pytest.raises(UserError):
        Settings().replace(max_tokens=0)
    assert Settings().replace(temperature=0).temperature == 0
