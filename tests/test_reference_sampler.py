"""`choose_word`, the reference sampler, is the oracle: the fast path and the generation loop draw what it draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recipe_repl.base.settings import Settings
from recipe_repl.generate import sampling
from recipe_repl.generate.inspection import next_logits
from recipe_repl.generate.loop import Request, StopReason, generate
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.model.vocab import PAD_ID, Vocabulary

BIG = 3000  # words: several blocks of the fast path's two-level draw, not a multiple of the block size
VOCAB = Vocabulary.from_list(["", "[UNK]"] + [f"w{i}" for i in range(BIG - 2)])

SETTINGS = [
    Settings(),
    Settings(temperature=0),
    Settings(temperature=0, top_p=0.5, allow_unk=False),
    Settings(temperature=0.7),
    Settings(temperature=1.6, top_k=40),
    Settings(top_k=1),
    Settings(temperature=0.9, top_p=0.8),
    Settings(min_p=0.05),
    Settings(temperature=1.2, repetition_penalty=1.8),
    Settings(allow_unk=False),
    Settings(temperature=0.8, top_k=20, top_p=0.9, min_p=0.01, repetition_penalty=1.3, allow_unk=False),
]
ROWS = 9  # more than four rows takes the fast path's vectorized search; up to four, its row-by-row one


def _logits(trial: int) -> np.ndarray:
    logits = (np.random.default_rng(trial).standard_normal((ROWS, BIG)) * 3).astype(np.float32)
    logits[:, 1] += 4.0  # [UNK] likely, so that banning it matters
    logits[2] += 300.0  # exp overflows float32: the shifted weights
    logits[5] -= 150.0  # every exp underflows: the shifted weights too
    logits[7, 10] = 95.0  # one word alone overflows
    return logits


def _changed(settings: Settings) -> str:
    default = Settings().as_dict()
    return ",".join(f"{k}={v}" for k, v in settings.as_dict().items() if default[k] != v) or "defaults"


@pytest.mark.parametrize("settings", SETTINGS, ids=_changed)
def test_the_fast_path_draws_exactly_the_reference_word(plugins, settings: Settings) -> None:
    """Over 60 seeds × 9 rows: alone (the REPL's one-row path), four at a time and nine at a time."""
    sampler = sampling.Sampler(settings, plugins.processor_specs(), VOCAB)
    history = [[2 + r, 40 + r, 2 + r, 1] for r in range(ROWS)]  # seen words for the repetition penalty
    for trial in range(60):
        logits = _logits(trial)
        expected = [sampling.choose_word(logits[r], settings, sampling.row_rng(trial, r), history[r])
                    for r in range(ROWS)]
        nine = sampler.sample(logits, history, [sampling.row_rng(trial, r) for r in range(ROWS)]).tokens.tolist()
        four = sampler.sample(logits[:4], history[:4], [sampling.row_rng(trial, r) for r in range(4)]).tokens.tolist()
        alone = [int(sampler.sample(logits[r:r + 1], history[r:r + 1], [sampling.row_rng(trial, r)]).tokens[0])
                 for r in range(ROWS)]
        assert nine == expected and four == expected[:4] and alone == expected, trial


def test_greedy_reference_uses_no_randomness() -> None:
    rng = sampling.row_rng(3, 0)
    before = rng.bit_generator.state
    logits = _logits(0)[0]
    assert sampling.choose_word(logits, Settings(temperature=0), rng) == int(np.argmax(logits))
    assert rng.bit_generator.state == before


def test_the_hook_registers_the_built_ins_in_the_references_order(plugins) -> None:
    builtin = [s for s in plugins.processor_specs() if s.automatic]  # driven by the settings
    assert [s.name for s in sorted(builtin, key=lambda s: s.order)] == list(sampling.CHAIN)
    # a plugin's processor lands after the repetition penalty and before the temperature by default
    assert sampling.chain_order("repetition") < sampling.PLUGIN_ORDER < sampling.chain_order("temperature")


@pytest.mark.parametrize("settings", [Settings(seed=5, max_tokens=30), Settings(seed=8, max_tokens=30, temperature=1.4,
                                                                                  top_k=12, repetition_penalty=1.5)])
def test_the_generation_loop_is_the_reference_loop(random_model: Path, plugins, settings: Settings) -> None:
    """nanoGPT's generate(), word by word from a fresh state, gives the loop's samples (batch of three)."""
    engine = OnnxEngine(random_model)
    prompts = ["recipe for roast", "mix salt", "chicken"]
    samples = list(generate(engine, [Request(p, key=k) for k, p in enumerate(prompts)], settings,
                            plugins.processor_specs()))
    for key, (prompt, sample) in enumerate(zip(prompts, samples, strict=True)):
        ids, rng, words = engine.vocab.encode(prompt), sampling.row_rng(settings.seed, key), []
        reason = StopReason.MAX_TOKENS
        while len(words) < settings.max_tokens:
            word = sampling.choose_word(next_logits(engine, ids), settings, rng, ids)
            if word == PAD_ID:
                reason = StopReason.STOP_TOKEN
                break
            ids, words = ids + [word], words + [word]
        assert (sample.token_ids, sample.stop_reason) == (words, reason)
