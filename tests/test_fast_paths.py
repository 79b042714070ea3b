"""The per-word fast paths: the one-pass draw, the I/O-bound stepper, no allocation per step.

They must give what the plain paths give: the same distribution, the same words for a seed whatever
the batch size, the same logits and state.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.settings import Settings
from recipe_repl.generate import fast_draw, sampling
from recipe_repl.generate.loop import Request, generate
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.model.stepping import BoundStepper, ForwardStepper, open_stepper
from recipe_repl.model.vocab import Vocabulary

BIG = 3000  # words: more than a few blocks of the two-level draw, not a multiple of the block size


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = ["", "[UNK]"] + [f"w{i}" for i in range(BIG - 2)]
    return build_random_lstm(tmp_path_factory.mktemp("big") / "big.onnx", words, embedding_dim=8, units=16,
                             scale=1.0)


def _logits(rows: int, vocab: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((rows, vocab)) * 3).astype(np.float32)


@pytest.mark.parametrize("settings", [Settings(seed=1), Settings(seed=1, temperature=0.7, top_k=40),
                                      Settings(seed=1, top_p=0.9, allow_unk=False)])
def test_one_pass_sample_draws_what_distribution_and_choose_draw(plugins, settings: Settings) -> None:
    vocab = Vocabulary.from_list(["", "[UNK]"] + [f"w{i}" for i in range(BIG - 2)])
    fast = sampling.Sampler(settings, plugins.processor_specs(), vocab)
    plain = sampling.Sampler(settings, plugins.processor_specs(), vocab)
    for trial in range(40):
        logits = _logits(3, BIG, trial)
        history = [[2, 3], [4], [5, 6, 7]]
        drawn = fast.sample(logits, history, [sampling.row_rng(trial, r) for r in range(3)])
        probs = plain.distribution(logits, history)
        np.testing.assert_array_equal(drawn.distribution(), probs)  # exactly the distribution shown
        chosen = plain.choose(probs, [sampling.row_rng(trial, r) for r in range(3)])
        assert drawn.tokens.tolist() == chosen.tolist()
        assert drawn.probs.tolist() == [float(probs[r, t]) for r, t in enumerate(chosen)]
        assert all(probs[r, t] > 0 for r, t in enumerate(chosen))


def test_one_pass_sample_is_batch_independent(plugins) -> None:
    vocab = Vocabulary.from_list(["", "[UNK]"] + [f"w{i}" for i in range(BIG - 2)])
    sampler = sampling.Sampler(Settings(seed=3, temperature=1.3), plugins.processor_specs(), vocab)
    rows = 9  # the vectorized path; one row alone takes the scalar path
    for trial in range(30):
        logits = _logits(rows, BIG, 100 + trial)
        together = sampler.sample(logits, [[]] * rows, [sampling.row_rng(trial, r) for r in range(rows)])
        tokens, probs = together.tokens.copy(), together.probs.copy()
        for r in range(rows):
            alone = sampler.sample(logits[r : r + 1], [[]], [sampling.row_rng(trial, r)])
            assert (int(alone.tokens[0]), float(alone.probs[0])) == (int(tokens[r]), float(probs[r]))


def test_block_sums_are_the_same_alone_and_in_a_batch() -> None:
    w = fast_draw.padded_weights(np.random.default_rng(5).random((7, BIG)).astype(np.float32))
    cum = np.empty((7, w.shape[1] // fast_draw.BLOCK))
    fast_draw.block_cdf(w, cum)
    for r in range(7):
        one = np.empty((1, cum.shape[1]))
        fast_draw.block_cdf(w[r : r + 1].copy(), one)
        assert one[0].tobytes() == cum[r].tobytes()


def test_one_pass_sample_follows_the_softmax(plugins) -> None:
    """Chi-square goodness of fit of 20 000 one-pass draws over 6 words (critical value p=0.001, 5 dof)."""
    vocab = Vocabulary.from_list(["", "[UNK]", "a", "b", "c", "d"])
    logits = np.array([[0.5, 2.0, 1.0, 0.0, -1.0, 3.0]], dtype=np.float32)
    sampler = sampling.Sampler(Settings(seed=0, temperature=0.8), plugins.processor_specs(), vocab)
    expected = sampling.softmax(logits / 0.8)[0]
    rng = sampling.row_rng(9, 0)
    n = 20_000
    counts = np.bincount([int(sampler.sample(logits, [[]], [rng]).tokens[0]) for _ in range(n)], minlength=6)
    assert float((((counts - n * expected) ** 2) / (n * expected)).sum()) < 20.5


def test_greedy_one_pass_is_the_top_word_and_uses_no_randomness(plugins) -> None:
    vocab = Vocabulary.from_list(["", "[UNK]"] + [f"w{i}" for i in range(BIG - 2)])
    sampler = sampling.Sampler(Settings(temperature=0), plugins.processor_specs(), vocab)
    logits = _logits(2, BIG)
    rng = sampling.row_rng(1, 0)
    before = rng.bit_generator.state
    drawn = sampler.sample(logits, [[], []], [rng, rng])
    assert drawn.tokens.tolist() == logits.argmax(axis=1).tolist() and drawn.probs.tolist() == [1.0, 1.0]
    assert rng.bit_generator.state == before


def test_bound_stepper_gives_the_forward_logits_and_state(big_model: Path) -> None:
    engine = OnnxEngine(big_model, threads=1)
    tokens = np.array([[5, 9, 2], [7, 7, 3]])
    _, state = engine.forward(tokens[:, :1], engine.start(2))
    bound = open_stepper(engine, state)
    plain = ForwardStepper(engine, state)
    assert isinstance(bound, BoundStepper)
    first = None
    for t in range(1, 3):
        got = bound.step(tokens[:, t])
        first = got if first is None else first
        np.testing.assert_array_equal(got, plain.step(tokens[:, t]))
        for a, b in zip(bound.state().arrays, plain.state().arrays, strict=True):
            np.testing.assert_array_equal(a, b)
    assert got is first  # one logits array, written in place at every step


def test_generation_is_the_same_through_either_stepper(big_model: Path, plugins, monkeypatch) -> None:
    engine = OnnxEngine(big_model, threads=1)
    settings = Settings(seed=11, max_tokens=30, temperature=0.9)
    reqs = [Request("w5 w6", key=0), Request("w7", key=1), Request("w8 w9 w10", key=2)]
    bound = [s.token_ids for s in generate(engine, reqs, settings, plugins.processor_specs())]
    monkeypatch.setattr(OnnxEngine, "can_bind", lambda self: False)  # back to plain forward calls
    plain = [s.token_ids for s in generate(engine, reqs, settings, plugins.processor_specs())]
    assert bound == plain and all(bound)


def test_a_step_allocates_nothing_of_the_vocabularys_size(big_model: Path, plugins) -> None:
    """Batch 1, default settings: the draw and the step reuse their arrays (measured with tracemalloc)."""
    engine = OnnxEngine(big_model, threads=1)
    sampler = sampling.Sampler(Settings(seed=2), plugins.processor_specs(), engine.vocab)
    stepper = open_stepper(engine, engine.start(1))
    rngs, history = [sampling.row_rng(2, 0)], [[]]
    logits = stepper.step(np.array([3]))
    for _ in range(3):  # warm-up: work arrays are made on the first step
        logits = stepper.step(sampler.sample(logits, history, rngs).tokens)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(50):
            logits = stepper.step(sampler.sample(logits, history, rngs).tokens)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < BIG * 4  # less than one float32 row of logits was ever allocated at once


# --- threads and spinning, per use ---------------------------------------------------------------------


def test_threads_and_spinning_reach_the_session(random_model: Path) -> None:
    from recipe_repl.model.engine import open_session

    session, _ = open_session(random_model, "cpu", threads=2, spinning=False)
    opts = session.get_session_options()
    assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    session, _ = open_session(random_model, "cpu", threads=1, spinning=True)
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert OnnxEngine(random_model, threads=3).session.get_session_options().intra_op_num_threads == 3


@pytest.mark.parametrize(("interactive", "flag", "config", "want"), [
    (True, None, None, 1),  # the REPL: one thread, nothing left spinning
    (False, None, None, 0),  # batch mode: ONNX Runtime's default, a thread per core
    (True, 3, None, 3), (False, 2, None, 2),  # --threads wins
    (True, None, 4, 4),  # then the config file
])
def test_threads_are_chosen_per_use(random_model: Path, interactive: bool, flag, config, want: int) -> None:
    from recipe_repl.base.config import Config
    from recipe_repl.frontends.startup import model_spec

    spec = model_spec(Config(Path("none.toml"), threads=config), {"model": random_model, "threads": flag},
                      interactive=interactive)
    assert spec.threads == want


def test_batch_mode_and_the_repl_open_the_model_with_their_threads(random_model: Path, plugins) -> None:
    import io

    from recipe_repl.frontends.batch import BatchFrontend
    from recipe_repl.frontends.startup import start_session

    frontend = BatchFrontend(io.StringIO(), io.StringIO())
    opts = {"model": random_model}
    session = start_session(plugins, frontend, opts)
    assert session.engine.session.get_session_options().intra_op_num_threads == 0
    frontend.interactive = True  # what the REPL's frontend says
    session = start_session(plugins, frontend, opts)
    assert session.engine.session.get_session_options().intra_op_num_threads == 1


def test_rows_that_would_overflow_or_underflow_are_shifted_by_their_max(plugins) -> None:
    """exp(logits) straight is the fast path; huge or tiny logits take the shifted one, row by row."""
    vocab = Vocabulary.from_list(["", "[UNK]"] + [f"w{i}" for i in range(BIG - 2)])
    sampler = sampling.Sampler(Settings(seed=5), plugins.processor_specs(), vocab)
    logits = _logits(6, BIG, 7)
    logits[1] += 300.0  # exp overflows float32
    logits[3] -= 150.0  # every exp underflows
    logits[4, 10] = 95.0  # one word alone overflows
    reference = sampling.softmax(logits)
    probs = sampler.distribution(logits, [[]] * 6)
    np.testing.assert_allclose(probs, reference, rtol=2e-6, atol=1e-12)
    for trial in range(20):
        together = sampler.sample(logits, [[]] * 6, [sampling.row_rng(trial, r) for r in range(6)])
        tokens = together.tokens.tolist()
        assert tokens == sampler.choose(probs, [sampling.row_rng(trial, r) for r in range(6)]).tolist()
        for r in range(6):
            alone = sampler.sample(logits[r : r + 1], [[]], [sampling.row_rng(trial, r)])
            assert int(alone.tokens[0]) == tokens[r] and float(alone.probs[0]) == float(probs[r, tokens[r]])
