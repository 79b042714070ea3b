"""The one generation loop shared by `generate`, the REPL and batch mode.

Prompts are prefilled in one call per group of equal length (padding would change an LSTM's state),
then every live row advances one token per step, carrying its state: O(1) work per token. Rows that
finish drop out of the batch. Each sample draws from its own seeded generator, so with a seed the
output never depends on the batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Protocol

import numpy as np

from recipe_repl.engine import Engine, State
from recipe_repl.errors import UserError
from recipe_repl.sampling import ProcessorSpec, StepContext, build_chain, distribution, draw, row_rng
from recipe_repl.settings import Settings
from recipe_repl.vocab import PAD_ID, detokenize


class StopReason(StrEnum):
    """Why a sample ended; always reported."""

    STOP_TOKEN = "stop token"
    MAX_TOKENS = "max tokens"
    STOP_STRING = "stop string"
    INTERRUPTED = "interrupted"


@dataclass
class Resume:
    """Where a sample can go on from: its LSTM state, without re-feeding anything."""

    state: State  # one row, after the fed tokens
    logits: np.ndarray | None  # next-word logits [vocab] for that state, or None if `pending` must be fed
    pending: tuple[int, ...]  # drawn tokens not yet fed to the model
    history: list[int]
    rng: np.random.Generator
    words_before: list[str]  # prompt and words generated so far: a continued sample reads on from them


@dataclass(frozen=True)
class Request:
    """One sample to generate."""

    prompt: str
    key: int = 0  # the sample's number in the run: seeds its generator
    index: int = 0  # which sample of this prompt (0 … n-1)
    resume: Resume | None = None  # go on from a kept state instead of prefilling the prompt


@dataclass
class Sample:
    """A finished sample."""

    prompt: str
    prompt_words: list[str]
    token_ids: list[int]  # generated ids, the stop token excluded
    words: list[str]
    probs: list[float]  # the probability each generated word had when drawn
    stop_reason: StopReason
    settings: Settings
    index: int = 0
    key: int = 0
    resume: Resume | None = field(default=None, repr=False)

    @property
    def continuation(self) -> str:
        """The generated words, readable."""
        return detokenize(self.words, capitalize=False)

    @property
    def text(self) -> str:
        """Prompt and continuation as one readable recipe."""
        return detokenize(self.prompt_words + self.words)

    @property
    def raw(self) -> str:
        """Prompt and continuation as the model's tokens."""
        return " ".join(self.prompt_words + self.words)


@dataclass(frozen=True)
class TokenEvent:
    """One generated word, as listeners see it."""

    request: Request
    step: int  # 0 for the first generated word
    token_id: int
    word: str  # "" for the stop token
    prob: float
    probs: np.ndarray  # the whole next-word distribution the word was drawn from (do not modify)


class Listener(Protocol):
    """Receives generation events (the REPL's streaming view, plugins' `on_token` hooks)."""

    def on_prompt(self, request: Request, prompt_ids: Sequence[int], settings: Settings) -> None: ...

    def on_token(self, event: TokenEvent) -> None: ...

    def on_sample_end(self, sample: Sample) -> None: ...


class NullListener:
    """A listener that ignores everything."""

    def on_prompt(self, request: Request, prompt_ids: Sequence[int], settings: Settings) -> None:
        """Ignore."""

    def on_token(self, event: TokenEvent) -> None:
        """Ignore."""

    def on_sample_end(self, sample: Sample) -> None:
        """Ignore."""


class FanOut:
    """Sends every event to several listeners, in order."""

    def __init__(self, *listeners: Listener) -> None:
        self.listeners = listeners

    def on_prompt(self, request: Request, prompt_ids: Sequence[int], settings: Settings) -> None:
        """Forward."""
        for lis in self.listeners:
            lis.on_prompt(request, prompt_ids, settings)

    def on_token(self, event: TokenEvent) -> None:
        """Forward."""
        for lis in self.listeners:
            lis.on_token(event)

    def on_sample_end(self, sample: Sample) -> None:
        """Forward."""
        for lis in self.listeners:
            lis.on_sample_end(sample)


def generate(
    engine: Engine,
    requests: Iterable[Request],
    settings: Settings,
    processors: Sequence[ProcessorSpec],
    listener: Listener | None = None,
    batch_size: int = 32,
) -> Iterator[Sample]:
    """Generate every request, yielding samples in request order, `batch_size` rows at a time.

    Ctrl-C ends the current batch: its samples come out with stop reason `interrupted`, and no
    further batches start.
    """
    if batch_size < 1:
        raise UserError("batch size must be at least 1")
    chain = build_chain(processors, settings, engine.vocab)
    listener = listener or NullListener()
    it = iter(requests)
    while chunk := list(islice(it, batch_size)):
        run = _Batch(engine, chunk, settings, chain, listener)
        yield from run.samples()
        if run.interrupted:
            return


class _Batch:
    """Generation state of one batch of rows."""

    def __init__(self, engine: Engine, requests: list[Request], settings: Settings, chain: list, listener: Listener):
        self.engine, self.requests, self.settings, self.chain, self.listener = engine, requests, settings, chain, listener
        self.vocab = engine.vocab
        self.interrupted = False
        n = len(requests)
        self.prompt_ids: list[list[int]] = []
        self.prompt_words: list[list[str]] = []
        self.history: list[list[int]] = []
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.probs: list[list[float]] = [[] for _ in range(n)]
        self.rngs: list[np.random.Generator] = []
        self.done: list[StopReason | None] = [None] * n
        self.resume: list[Resume | None] = [None] * n
        for req in requests:
            ids = [] if req.resume else self.vocab.encode(req.prompt)
            if not req.resume and not ids:
                raise UserError("an empty prompt gives the model nothing to go on")
            self.prompt_ids.append(ids)
            self.prompt_words.append(list(req.resume.words_before) if req.resume else self.vocab.decode_tokens(ids))
            self.history.append(list(req.resume.history) if req.resume else list(ids))
            self.rngs.append(req.resume.rng if req.resume else row_rng(settings.seed, req.key))

    def samples(self) -> list[Sample]:
        """Run the batch to the end (or to Ctrl-C) and return its samples in request order."""
        live = list(range(len(self.requests)))
        state: State | None = None
        logits: np.ndarray | None = None
        fed = [0] * len(self.requests)  # generated tokens whose effect is in `state`
        try:
            for i, req in enumerate(self.requests):
                self.listener.on_prompt(req, self.prompt_ids[i], self.settings)
            state, logits = self._prefill()
            step = 0
            while live:
                ctx = StepContext(self.settings, self.vocab, [self.history[r] for r in live])
                probs = distribution(logits, self.chain, ctx)
                chosen = draw(probs, [self.rngs[r] for r in live])
                keep: list[int] = []
                for j, r in enumerate(live):
                    if self._accept(r, int(chosen[j]), float(probs[j, chosen[j]]), probs[j], step):
                        keep.append(j)
                    else:
                        self.resume[r] = self._resume_point(state.take([j]), logits[j], r, fed[r])
                if len(keep) < len(live):
                    state, logits = state.take(keep), logits[keep]
                    live = [live[j] for j in keep]
                if not live:
                    break
                feed = np.array([[self.tokens[r][-1]] for r in live], dtype=np.int64)
                out, new_state = self.engine.forward(feed, state)
                state, logits = new_state, out[:, -1, :]
                for r in live:
                    fed[r] = len(self.tokens[r])
                step += 1
        except KeyboardInterrupt:
            self.interrupted = True
            for j, r in enumerate(live):
                if self.done[r] is None:
                    self.done[r] = StopReason.INTERRUPTED
                    if state is not None and logits is not None and j < state.batch_size:
                        self.resume[r] = self._resume_point(state.take([j]), logits[j], r, fed[r])
        results = []
        for i, req in enumerate(self.requests):
            if self.done[i] is None:  # interrupted during the prefill
                self.done[i] = StopReason.INTERRUPTED
            sample = Sample(
                prompt=req.prompt,
                prompt_words=self.prompt_words[i],
                token_ids=self.tokens[i],
                words=self.vocab.decode_tokens(self.tokens[i]),
                probs=self.probs[i],
                stop_reason=self.done[i] or StopReason.INTERRUPTED,
                settings=self.settings,
                index=req.index,
                key=req.key,
                resume=self.resume[i],
            )
            self.listener.on_sample_end(sample)
            results.append(sample)
        return results

    def _prefill(self) -> tuple[State, np.ndarray]:
        """Feed every prompt (equal lengths together) and return the state and next-word logits per row."""
        n = len(self.requests)
        groups: dict[int, list[int]] = {}
        for i, req in enumerate(self.requests):
            if req.resume is None:
                groups.setdefault(len(self.prompt_ids[i]), []).append(i)
        parts: list[State] = []
        part_logits: list[np.ndarray] = []
        order: list[int] = []
        for length, rows in groups.items():
            tokens = np.array([self.prompt_ids[r] for r in rows], dtype=np.int64).reshape(len(rows), length)
            out, st = self.engine.forward(tokens, self.engine.start(len(rows)))
            parts.append(st)
            part_logits.append(out[:, -1, :])
            order.extend(rows)
        for i, req in enumerate(self.requests):
            if req.resume is not None:
                st, lg = self._resumed(req.resume)
                parts.append(st)
                part_logits.append(lg[None, :])
                order.append(i)
        state = self.engine.concat(parts)
        logits = np.concatenate(part_logits, axis=0)
        inverse = np.argsort(np.asarray(order))  # back to request order
        assert len(order) == n
        return state.take(inverse), logits[inverse]

    def _resumed(self, resume: Resume) -> tuple[State, np.ndarray]:
        if resume.pending:
            out, st = self.engine.forward(np.array([resume.pending], dtype=np.int64), resume.state)
            return st, out[0, -1, :]
        assert resume.logits is not None
        return resume.state, resume.logits

    def _accept(self, r: int, token: int, prob: float, probs: np.ndarray, step: int) -> bool:
        """Record one drawn token; return False when the row is finished."""
        req = self.requests[r]
        if token == PAD_ID:
            self.listener.on_token(TokenEvent(req, step, token, "", prob, probs))
            self.done[r] = StopReason.STOP_TOKEN
            return False
        self.tokens[r].append(token)
        self.probs[r].append(prob)
        self.history[r].append(token)
        self.listener.on_token(TokenEvent(req, step, token, self.vocab.word(token), prob, probs))
        if self.settings.stop and contains_stop(self.vocab.decode_tokens(self.tokens[r]), self.settings.stop):
            self.done[r] = StopReason.STOP_STRING
            return False
        if len(self.tokens[r]) >= self.settings.max_tokens:
            self.done[r] = StopReason.MAX_TOKENS
            return False
        return True

    def _resume_point(self, state: State, logits: np.ndarray, r: int, fed: int) -> Resume:
        pending = tuple(self.tokens[r][fed:])
        words = self.prompt_words[r] + self.vocab.decode_tokens(self.tokens[r])
        return Resume(state, None if pending else logits.copy(), pending, list(self.history[r]), self.rngs[r], words)


def contains_stop(words: list[str], stop: str) -> bool:
    """True when the generated words contain the stop string (in raw tokens or in readable text)."""
    needle = stop.lower()
    return needle in " ".join(words) or needle in detokenize(words, capitalize=False).lower()
