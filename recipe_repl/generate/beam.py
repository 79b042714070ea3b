"""Beam search: keep the K most likely continuations instead of drawing one word at a time.

Each step scores every live beam's next words by log-probability under the sampler's chain at
temperature 1 (`search_settings`: `:unk off`, the repetition penalty, top-k/top-p and plugins'
processors still shape the search, while temperature — which changes no ranking within a step — does
not), keeps the K best extensions, and sets a beam aside when the generation loop's stop check
(`loop.stop_reason`: stop token, stop string) ends it. The beams advance together through the
generation loop's stepper, so all live beams have the same length: max tokens ends them all at once.
Finished beams are ranked by their log-probability divided by length ** length_penalty (1 = the mean
log-probability). With K = 1 this is exactly greedy decoding.

A beam whose next-word distribution is not a number (the model's logits went NaN or infinite after
its last word) ends there with stop reason `not finite` and a `stop_detail` naming the step and the
word, as a sample does in the generation loop; the other beams go on.

Like sampling, the search sends its listener `on_prompt`, an `on_token` for every word a kept beam
takes (several per step, all with the search's request), and `on_sample_end` for each beam returned.
Ctrl-C ends it early: the beams finished so far come back with the live ones, these with stop reason
`interrupted`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import (
    MAX_PROMPT_TOKENS,
    Listener,
    NullListener,
    Request,
    Sample,
    StopReason,
    TokenEvent,
    encode_prompt,
    prefill,
    stop_reason,
)
from recipe_repl.generate.sampling import ProcessorSpec, Sampler
from recipe_repl.model.engine import Engine
from recipe_repl.model.stepping import keep_rows, open_stepper
from recipe_repl.model.vocab import PAD_ID, Vocabulary

MAX_WIDTH = 64


def search_settings(settings: Settings) -> Settings:
    """The settings beams are scored under: these at temperature 1 (the one place that says so)."""
    return replace(settings, temperature=1.0)


def chain_settings(sample: Sample) -> Settings:
    """The settings a sample's choices were made under: its own, or for a beam `search_settings`."""
    return search_settings(sample.settings) if sample.method == "beam" else sample.settings


@dataclass
class _Beam:
    tokens: list[int]  # generated ids, the stop token excluded
    probs: list[float]  # the probability of each, under `search_settings`
    logp: float  # the sum of their log-probabilities (the stop token's included)
    row: int = 0  # the row of the step's batch it grew from
    stop: StopReason | None = None  # why it ended; None while it goes on
    stop_prob: float | None = None  # the stop token's probability when it ended the beam
    detail: str = ""  # for stop reason NOT_FINITE: where, in words


def beam_search(engine: Engine, prompt: str, settings: Settings, processors: list[ProcessorSpec],
                width: int, length_penalty: float = 1.0, max_prompt_tokens: int = MAX_PROMPT_TOKENS,
                key: int = 0, listener: Listener | None = None) -> list[Sample]:
    """The `width` best continuations of `prompt`, best first, as samples (method "beam", keys key, key + 1, …)."""
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"beam width must be between 1 and {MAX_WIDTH}")
    vocab = engine.vocab
    ids = encode_prompt(engine, prompt, max_prompt_tokens)
    request = Request(prompt, key=key)
    listener = listener or NullListener()
    sampler = Sampler(search_settings(settings), processors, vocab)
    live = [_Beam([], [], 0.0)]
    finished: list[_Beam] = []
    try:
        listener.on_prompt(request, ids, settings)
        logits, state = prefill(engine, np.array([ids], dtype=np.int64), engine.start(1))
        stepper = open_stepper(engine, state)
        step = 0
        while live:
            probs = sampler.distribution(logits, [ids + b.tokens for b in live])
            bad = np.flatnonzero(probs[:, 0] != probs[:, 0])  # a row that is not a number is NaN throughout
            if bad.size:  # those beams end here; `_best_extensions` takes no word from them
                finished += [_not_finite(live[b], logits[b], step, (ids + live[b].tokens)[-1], vocab) for b in bad]
            kept = _best_extensions(live, probs, width, width - len(finished), vocab, settings)
            going = [b for b in kept if b.stop in (None, StopReason.MAX_TOKENS)]
            finished += [b for b in kept if b.stop not in (None, StopReason.MAX_TOKENS)]
            live = [] if len(finished) >= width else going
            for beam in kept:
                token = PAD_ID if beam.stop is StopReason.STOP_TOKEN else beam.tokens[-1]
                prob = beam.stop_prob if beam.stop_prob is not None else beam.probs[-1]
                word = vocab.word(token) if token != PAD_ID else ""
                listener.on_token(TokenEvent(request, step, token, word, prob, probs[beam.row]))
            if not live or live[0].stop is StopReason.MAX_TOKENS:  # the beams all have the same length
                break
            stepper = keep_rows(engine, stepper, [b.row for b in live])
            logits = stepper.step(np.array([b.tokens[-1] for b in live], dtype=np.int64))
            step += 1
    except KeyboardInterrupt:
        pass  # Ctrl-C: what is finished so far, and the live beams as they are
    finished += [replace(b, stop=b.stop or StopReason.INTERRUPTED) for b in live]
    best = sorted(finished, key=lambda b: _rank(b, length_penalty), reverse=True)[:width]
    prompt_words = vocab.decode_tokens(ids)
    samples = [Sample(prompt=prompt, prompt_words=prompt_words, token_ids=b.tokens, words=vocab.decode_tokens(b.tokens),
                      probs=b.probs, stop_reason=b.stop or StopReason.INTERRUPTED, settings=settings, index=i,
                      key=key + i, stop_prob=b.stop_prob, method="beam", stop_detail=b.detail)
               for i, b in enumerate(best)]
    for sample in samples:
        listener.on_sample_end(sample)
    return samples


def _not_finite(beam: _Beam, logits: np.ndarray, step: int, last: int, vocab: Vocabulary) -> _Beam:
    """`beam` ended at this step: its next-word distribution is not a number (whose fault, said in words)."""
    where = f"at step {step + 1}, after “{vocab.words[last]}”"
    if not np.isfinite(np.asarray(logits)).all():
        detail = f"the model's logits are not finite numbers (NaN or infinity) {where}: the beam ends there"
    else:
        detail = (f"the next-word distribution is not a number {where} (the settings or a processor left no "
                  "word possible): the beam ends there")
    return replace(beam, stop=StopReason.NOT_FINITE, detail=detail)


def _best_extensions(live: list[_Beam], probs: np.ndarray, width: int, room: int, vocab: Vocabulary,
                     settings: Settings) -> list[_Beam]:
    """The step's best extensions of the live beams, best first: up to `width` that go on, and those
    the stop check ends on the way; once `room` more have ended, the next beam that takes a word is the last.

    probs [len(live), vocab] are the live beams' next-word distributions under `search_settings`.
    """
    with np.errstate(divide="ignore"):
        logp = np.log(probs.astype(np.float64))
    candidates: list[tuple[float, int, int]] = []  # (score, beam index, token)
    for b, beam in enumerate(live):
        # stable: ties go to the lower id, as argmax (greedy) breaks them
        order = np.argsort(-logp[b], kind="stable")[:width]
        candidates += [(beam.logp + float(logp[b, t]), b, int(t)) for t in order if np.isfinite(logp[b, t])]
    candidates.sort(key=lambda c: -c[0])  # stable again: earlier beams first on ties
    kept: list[_Beam] = []
    going = ended = 0
    for score, b, token in candidates:
        if going >= width:
            break
        beam, p = live[b], float(probs[b, token])
        if token == PAD_ID:
            grown = _Beam(beam.tokens, beam.probs, score, b, StopReason.STOP_TOKEN, p)
        else:
            tokens = [*beam.tokens, token]
            grown = _Beam(tokens, [*beam.probs, p], score, b, stop_reason(token, tokens, vocab, settings))
        kept.append(grown)
        if grown.stop in (None, StopReason.MAX_TOKENS):
            going += 1
        else:
            ended += 1
        if token != PAD_ID and ended >= room:
            break
    return kept


def _rank(beam: _Beam, length_penalty: float) -> float:
    """Log-probability / length ** length_penalty, the stop token counted as a choice."""
    n = len(beam.tokens) + (1 if beam.stop_prob is not None else 0)
    return float(beam.logp / max(n, 1) ** length_penalty)


def mean_logprob(sample: Sample) -> float:
    """The mean log-probability of a sample's choices (the stop token included when it ended it)."""
    n = len(sample.token_probs)
    return sample.logprob_sum / n if n else -math.inf
