"""Beam search: keep the K most likely continuations instead of drawing one word at a time.

Each step scores every live beam's next words by log-probability under the sampler's chain at
temperature 1 (so `:unk off`, the repetition penalty, top-k/top-p and plugins' processors still
shape the search, while temperature — which changes no ranking within a step — does not), keeps the
K best extensions, and sets a beam aside when it reaches the stop token. Finished beams are ranked
by their log-probability divided by length ** length_penalty (1 = the mean log-probability). With
K = 1 this is exactly greedy decoding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import Sample, StopReason, contains_stop, encode_prompt, prefill
from recipe_repl.generate.sampling import ProcessorSpec, Sampler
from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import PAD_ID

MAX_WIDTH = 64


@dataclass
class _Beam:
    tokens: list[int]
    probs: list[float]
    logp: float
    row: int  # its row in the batch of live beams


def beam_search(engine: Engine, prompt: str, settings: Settings, processors: list[ProcessorSpec],
                width: int, length_penalty: float = 1.0, max_prompt_tokens: int = 10_000,
                key: int = 0) -> list[Sample]:
    """The `width` best continuations of `prompt`, best first, as samples (method "beam")."""
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"beam width must be between 1 and {MAX_WIDTH}")
    vocab = engine.vocab
    ids = encode_prompt(engine, prompt, max_prompt_tokens)
    sampler = Sampler(replace(settings, temperature=1.0), processors, vocab)
    logits, state = prefill(engine, np.array([ids], dtype=np.int64), engine.start(1))
    live = [_Beam([], [], 0.0, 0)]
    finished: list[tuple[_Beam, StopReason, float | None]] = []
    for _step in range(settings.max_tokens):
        probs = sampler.distribution(logits, [ids + b.tokens for b in live])
        with np.errstate(divide="ignore"):
            logp = np.log(probs.astype(np.float64))
        candidates: list[tuple[float, int, int]] = []  # (score, beam index, token)
        for b, beam in enumerate(live):
            # stable: ties go to the lower id, as argmax (greedy) breaks them
            order = np.argsort(-logp[b], kind="stable")[:width]
            candidates += [(beam.logp + float(logp[b, t]), b, int(t)) for t in order if np.isfinite(logp[b, t])]
        candidates.sort(key=lambda c: -c[0])  # stable again: earlier beams first on ties
        next_live: list[_Beam] = []
        for score, b, token in candidates:
            if len(next_live) >= width:
                break
            beam = live[b]
            p = float(probs[b, token])
            if token == PAD_ID:
                finished.append((_Beam(beam.tokens, beam.probs, score, -1), StopReason.STOP_TOKEN, p))
                continue
            grown = _Beam([*beam.tokens, token], [*beam.probs, p], score, b)
            if settings.stop and contains_stop(vocab.decode_tokens(grown.tokens), settings.stop):
                finished.append((grown, StopReason.STOP_STRING, None))
            else:
                next_live.append(grown)
            if len(finished) >= width:
                break
        if len(finished) >= width or not next_live:
            live = []
            break
        state = state.take([beam.row for beam in next_live])
        out, state = engine.forward(np.array([[beam.tokens[-1]] for beam in next_live], dtype=np.int64), state)
        logits = out[:, -1, :]
        for row, beam in enumerate(next_live):
            beam.row = row
        live = next_live
    finished += [(beam, StopReason.MAX_TOKENS, None) for beam in live]

    def rank(item: tuple[_Beam, StopReason, float | None]) -> float:
        beam, _, stop_p = item
        n = len(beam.tokens) + (1 if stop_p is not None else 0)
        return float(beam.logp / max(n, 1) ** length_penalty)

    best = sorted(finished, key=rank, reverse=True)[:width]
    prompt_words = vocab.decode_tokens(ids)
    return [Sample(prompt=prompt, prompt_words=prompt_words, token_ids=beam.tokens,
                   words=vocab.decode_tokens(beam.tokens), probs=beam.probs, stop_reason=reason,
                   settings=settings, index=i, key=key, stop_prob=stop_p, method="beam")
            for i, (beam, reason, stop_p) in enumerate(best)]


def mean_logprob(sample: Sample) -> float:
    """The mean log-probability of a sample's choices (the stop token included when it ended it)."""
    n = len(sample.token_probs)
    return sample.logprob_sum / n if n else -math.inf
