"""The one generation loop shared by `generate`, the REPL, batch mode, `:pick`, the training samples and
the model card.

Prompts are prefilled together per group of equal length (padding would change an LSTM's state), in
chunks that keep only the last position's logits, then every live row advances one token per step,
carrying its state: O(1) work per token. Rows that finish drop out of the batch. At each step the
`Sampler` turns logits into a distribution and a *chooser* picks each row's next token: by default a
draw from the row's own seeded generator (so with a seed the output never depends on the batch
size); `:pick`'s chooser asks the person instead. Stop token, stop string, max tokens, plugin
events and resume points come from this loop alone.

Logits that stop being numbers (NaN or infinity, after some word) end that row at that step, with
stop reason `not finite` and a `stop_detail` naming the step and the word: the drawn word's
probability is NaN whenever the row's normaliser is, so one comparison per row and step finds it
(nothing scans the logits twice); only then are the row's logits looked at, to say whose fault it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Protocol

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.model_probs import ModelProbs
from recipe_repl.generate.sampling import ProcessorSpec, Sampler, row_rng
from recipe_repl.model.engine import Engine, State
from recipe_repl.model.stepping import Stepper, keep_rows, open_stepper
from recipe_repl.model.vocab import PAD_ID, Vocabulary, detokenize

MAX_PROMPT_TOKENS = 10_000  # default cap on a prompt's length (`--max-prompt-tokens`)
PREFILL_FLOATS = 4_000_000  # logits one prefill call may return (16 MB): long prompts go in chunks
STOP_HERE = -1  # a chooser's answer for "end this row now" (`:pick`'s `s`): the sample can be continued
_NOT_DRAWN = -2  # a row whose distribution is not a number: no word is chosen for it (the loop ends it)


class StopReason(StrEnum):
    """Why a sample ended; always reported."""

    STOP_TOKEN = "stop token"
    MAX_TOKENS = "max tokens"
    STOP_STRING = "stop string"
    INTERRUPTED = "interrupted"
    NOT_FINITE = "not finite"  # the next-word distribution was not a number (NaN or infinite logits)


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
    stop_prob: float | None = None  # the stop token's probability when it ended the sample
    # per step: (id, word, sampling p, model p) of the likeliest words
    alternatives: list[list[tuple[int, str, float, float]]] = field(default_factory=list)
    method: str = "sample"  # "sample" (drawn), "pick" (chosen by a person) or "beam" (beam search)
    rng: np.random.Generator | None = field(default=None, repr=False)  # its generator: `:back` goes on with it
    # the model's own probability of each generated word (temperature 1, no processors), and of the stop
    # token when it ended the sample; None when nobody asked for them (see `generate`'s `model_probs`)
    model_probs: list[float] | None = None
    stop_model_prob: float | None = None
    stop_detail: str = ""  # for stop reason NOT_FINITE: at which step and word, and whose logits

    @property
    def token_probs(self) -> list[float]:
        """The probability of every choice made, the stop token included when it ended the sample."""
        return self.probs + ([self.stop_prob] if self.stop_prob is not None else [])

    @property
    def logprob_sum(self) -> float:
        """Sum of the log-probabilities of every choice (−inf if one was impossible)."""
        return sum(math.log(p) if p > 0 else -math.inf for p in self.token_probs)

    @property
    def perplexity(self) -> float | None:
        """exp(−mean log-probability) of the continuation's choices; None when nothing was chosen."""
        n = len(self.token_probs)
        return math.exp(-self.logprob_sum / n) if n else None

    @property
    def model_token_probs(self) -> list[float] | None:
        """The model's own probability of every choice (the stop token included when it ended the sample)."""
        if self.model_probs is None:
            return None
        return self.model_probs + ([self.stop_model_prob] if self.stop_model_prob is not None else [])

    @property
    def model_logprob_sum(self) -> float | None:
        """Sum of the model's log-probabilities of every choice (None when not computed)."""
        probs = self.model_token_probs
        return None if probs is None else sum(math.log(p) if p > 0 else -math.inf for p in probs)

    @property
    def model_perplexity(self) -> float | None:
        """exp(−mean model log-probability) of the choices: what `score` and `eval` count for these words."""
        total, probs = self.model_logprob_sum, self.model_token_probs
        return math.exp(-total / len(probs)) if total is not None and probs else None

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
    model_prob: float | None = None  # the model's own probability of the word (None when not computed)
    logits: np.ndarray | None = None  # [vocab] the raw logits it was chosen from: the model's own distribution


@dataclass(frozen=True)
class Step:
    """What a chooser sees at one step: the live rows' distributions, histories and generators."""

    step: int  # 0 for the first generated word
    probs: np.ndarray  # [rows, vocab] from the Sampler (do not modify)
    history: Sequence[Sequence[int]]  # per row: prompt ids then generated ids so far (read, do not keep)
    rngs: Sequence[np.random.Generator]
    sampler: Sampler
    logits: np.ndarray | None = None  # [rows, vocab] the model's raw logits (its own distribution; do not modify)

    def draw(self) -> np.ndarray:
        """What the sampler would choose for every row (consumes each row's randomness)."""
        return self.sampler.choose(self.probs, self.rngs)


# A chooser returns one token id per live row, or STOP_HERE to end that row where it is.
Chooser = Callable[[Step], Sequence[int] | np.ndarray]


def draw_chooser(step: Step) -> np.ndarray:
    """The default chooser: the sampler draws."""
    return step.draw()


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
    chooser: Chooser = draw_chooser,
    max_prompt_tokens: int = MAX_PROMPT_TOKENS,
    top_alternatives: int = 0,
    method: str = "sample",
    model_probs: bool = False,
) -> Iterator[Sample]:
    """Generate every request, yielding samples in request order, `batch_size` rows at a time.

    `top_alternatives` > 0 records that many most likely words at each step (`Sample.alternatives`,
    with the model's probability of each); `method` names how the chooser chooses, for the records;
    `model_probs` records the model's own probability of each chosen word (`Sample.model_probs`: free
    when the settings change nothing, one exp pass over the logits per step otherwise). Ctrl-C ends
    the current batch: its samples come out with stop reason `interrupted`, and no further batches start.
    """
    if batch_size < 1:
        raise UserError("batch size must be at least 1")
    sampler = Sampler(settings, processors, engine.vocab)
    listener = listener or NullListener()
    it = iter(requests)
    while chunk := list(islice(it, batch_size)):
        run = _Batch(engine, chunk, sampler, listener, chooser, max_prompt_tokens, top_alternatives, method,
                     model_probs)
        yield from run.samples()
        if run.interrupted:
            return


def encode_prompt(engine: Engine, prompt: str, max_prompt_tokens: int = MAX_PROMPT_TOKENS) -> list[int]:
    """A prompt's ids, or a UserError when it has no words or more than `max_prompt_tokens`.

    The tokens are counted (up to the limit) before anything is encoded, so an enormous line costs
    no more than a prompt at the limit.
    """
    vocab = engine.vocab
    if vocab.count_tokens(prompt, max_prompt_tokens + 1) > max_prompt_tokens:
        raise UserError(f"the prompt is over the limit of {max_prompt_tokens:,} tokens (--max-prompt-tokens)")
    ids = vocab.encode(prompt)
    if not ids:
        raise UserError("an empty prompt gives the model nothing to go on")
    return ids


def prefill(engine: Engine, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """Feed tokens [rows, time] in chunks; return the last position's logits [rows, vocab] and the state.

    The model returns logits for every position, and a long prompt's would not fit in memory
    ([rows, time, vocab] floats): chunks bound that, and only the last position is kept.
    """
    rows, length = tokens.shape
    chunk = max(1, PREFILL_FLOATS // max(1, rows * len(engine.vocab)))
    last: np.ndarray | None = None
    for start in range(0, length, chunk):
        out, state = engine.forward(tokens[:, start:start + chunk], state)
        last = out[:, -1, :]
    assert last is not None, "prefill needs at least one token"
    return last, state


class _Batch:
    """Generation state of one batch of rows."""

    def __init__(self, engine: Engine, requests: list[Request], sampler: Sampler, listener: Listener,
                 chooser: Chooser, max_prompt_tokens: int, top_alternatives: int, method: str,
                 model_probs: bool = False) -> None:
        self.engine, self.requests, self.sampler, self.listener = engine, requests, sampler, listener
        self.chooser, self.top_n, self.method = chooser, top_alternatives, method
        # the model's probabilities: the drawn ones when the chain changes nothing, else computed per step
        self.same = not sampler.chain and not sampler.greedy
        self.model = ModelProbs() if model_probs and not self.same else None
        self.want_model = model_probs
        self.settings = sampler.settings
        self.vocab = engine.vocab
        self.interrupted = False
        self.events = not isinstance(listener, NullListener)  # build no events nobody reads
        n = len(requests)
        self.prompt_ids: list[list[int]] = []
        self.prompt_words: list[list[str]] = []
        self.history: list[list[int]] = []
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.probs: list[list[float]] = [[] for _ in range(n)]
        self.rngs: list[np.random.Generator] = []
        self.done: list[StopReason | None] = [None] * n
        self.resume: list[Resume | None] = [None] * n
        self.stop_probs: list[float | None] = [None] * n
        self.details: list[str] = [""] * n
        self.alternatives: list[list[list[tuple[int, str, float, float]]]] = [[] for _ in range(n)]
        self.model_probs: list[list[float]] = [[] for _ in range(n)]
        self.stop_model_probs: list[float | None] = [None] * n
        settings = self.settings
        for req in requests:
            ids = [] if req.resume else encode_prompt(engine, req.prompt, max_prompt_tokens)
            self.prompt_ids.append(ids)
            self.prompt_words.append(list(req.resume.words_before) if req.resume else self.vocab.decode_tokens(ids))
            self.history.append(list(req.resume.history) if req.resume else list(ids))
            self.rngs.append(req.resume.rng if req.resume else row_rng(settings.seed, req.key))

    def samples(self) -> list[Sample]:
        """Run the batch to the end (or to Ctrl-C) and return its samples in request order."""
        live = list(range(len(self.requests)))
        stepper: Stepper | None = None
        logits: np.ndarray | None = None
        fed = [0] * len(self.requests)  # generated tokens whose effect is in the stepper's state
        fast = self.chooser is draw_chooser  # see `_choose`
        want_probs = self.events or self.top_n > 0
        try:
            for i, req in enumerate(self.requests):
                self.listener.on_prompt(req, self.prompt_ids[i], self.settings)
            state, logits = self._prefill()
            stepper = open_stepper(self.engine, state)
            step = 0
            history = [self.history[r] for r in live]  # the same lists, appended to in place
            rngs = [self.rngs[r] for r in live]
            while live:
                chosen, tokens, chosen_list, probs = self._choose(step, logits, history, rngs, fast, want_probs)
                model = (self.model.chosen(logits, [t if t >= 0 else PAD_ID for t in tokens])
                         if self.model is not None else None)
                keep: list[int] = []
                for j, r in enumerate(live):
                    token = tokens[j]
                    if token == STOP_HERE:
                        self.done[r] = StopReason.INTERRUPTED
                    else:
                        row = None if probs is None else probs[j]
                        if chosen_list is not None:
                            prob = chosen_list[j]
                        elif token == _NOT_DRAWN:
                            prob = math.nan
                        else:
                            assert row is not None  # a chooser is always shown the distribution
                            prob = float(row[token])
                        if prob != prob:  # NaN: the row's normaliser is not a number (the only check per token)
                            self._not_finite(r, logits[j], step)
                            continue  # no resume point: the state after such logits is worth nothing
                        mprob = model[j] if model is not None else prob if self.want_model else None
                        if self._accept(r, token, prob, row, step, mprob,
                                        logits[j] if self.top_n or self.events else None):
                            keep.append(j)
                            continue
                    self.resume[r] = self._resume_point(stepper.state().take([j]), logits[j], r, fed[r])
                feed = np.asarray(chosen)
                if len(keep) < len(live):
                    if not keep:
                        break
                    # A row finished: a smaller batch from here on (the only time anything is re-made).
                    feed = np.asarray([tokens[j] for j in keep], dtype=np.int64)
                    stepper, logits = keep_rows(self.engine, stepper, keep), logits[keep]
                    live = [live[j] for j in keep]
                    history = [self.history[r] for r in live]
                    rngs = [self.rngs[r] for r in live]
                logits = stepper.step(feed)
                for r in live:
                    fed[r] = len(self.tokens[r])
                step += 1
        except KeyboardInterrupt:
            self.interrupted = True
            for j, r in enumerate(live):
                if self.done[r] is None:
                    self.done[r] = StopReason.INTERRUPTED
                    if stepper is not None and logits is not None and j < len(logits):
                        self.resume[r] = self._resume_point(stepper.state().take([j]), logits[j], r, fed[r])
        return self._results()

    def _choose(self, step: int, logits: np.ndarray, history: list[list[int]], rngs: list[np.random.Generator],
                fast: bool, want_probs: bool
                ) -> tuple[Sequence[int] | np.ndarray, list[int], list[float] | None, np.ndarray | None]:
        """One step's choice for the live rows: (as chosen, token ids, their probabilities, the distributions).

        The default chooser draws straight from the sampler's work arrays (its probabilities come with
        it); the whole distribution is only made when someone looks at it (listeners, top alternatives,
        another chooser, which then gives no probabilities).
        """
        probs: np.ndarray | None = None
        chosen_probs: np.ndarray | None = None
        chosen: Sequence[int] | np.ndarray
        if fast:
            drawn = self.sampler.sample(logits, history, rngs)
            chosen, chosen_probs = drawn.tokens, drawn.probs
            if want_probs:
                probs = drawn.distribution()
        else:
            probs = self.sampler.distribution(logits, history)
            bad = probs[:, 0] != probs[:, 0]  # a row that is not a number is NaN everywhere
            if bad.any():  # those rows get no word; the chooser (a person, for :pick) sees the others only
                good = np.flatnonzero(~bad)
                picked = np.full(len(probs), _NOT_DRAWN, dtype=np.int64)
                if good.size:
                    sub = Step(step, probs[good], [history[i] for i in good], [rngs[i] for i in good], self.sampler,
                               logits[good])
                    picked[good] = np.asarray(self.chooser(sub), dtype=np.int64)
                chosen = picked
            else:
                chosen = self.chooser(Step(step, probs, history, rngs, self.sampler, logits))
        # plain ints and floats: no numpy scalar per row
        tokens = chosen.tolist() if isinstance(chosen, np.ndarray) else [int(t) for t in chosen]
        return chosen, tokens, chosen_probs.tolist() if chosen_probs is not None else None, probs

    def _results(self) -> list[Sample]:
        """Every row's `Sample`, in request order, each announced to the listener."""
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
                stop_prob=self.stop_probs[i],
                alternatives=self.alternatives[i],
                method=self.method,
                rng=self.rngs[i],
                model_probs=self.model_probs[i] if self.want_model else None,
                stop_model_prob=self.stop_model_probs[i],
                stop_detail=self.details[i],
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
            last, st = prefill(self.engine, tokens, self.engine.start(len(rows)))
            parts.append(st)
            part_logits.append(last)
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
            last, st = prefill(self.engine, np.array([resume.pending], dtype=np.int64), resume.state)
            return st, last[0]
        assert resume.logits is not None
        return resume.state, resume.logits

    def _accept(self, r: int, token: int, prob: float, probs: np.ndarray | None, step: int,
                model_prob: float | None = None, logits: np.ndarray | None = None) -> bool:
        """Record one drawn token; return False when the row is finished.

        `probs` (the row's whole distribution) is given when listeners or top alternatives need it;
        `model_prob` is the model's own probability of the token; `logits`, the row's raw logits, when
        top alternatives need the model's column too.
        """
        if self.top_n and probs is not None and logits is not None:
            self.alternatives[r].append(alternatives(self.vocab.words, probs, logits, self.top_n))
        if token == PAD_ID:
            self.stop_probs[r] = prob
            self.stop_model_probs[r] = model_prob
        else:
            self.tokens[r].append(token)
            self.probs[r].append(prob)
            if model_prob is not None:
                self.model_probs[r].append(model_prob)
            self.history[r].append(token)
        if self.events and probs is not None:
            word = self.vocab.word(token) if token != PAD_ID else ""
            self.listener.on_token(TokenEvent(self.requests[r], step, token, word, prob, probs, model_prob, logits))
        self.done[r] = stop_reason(token, self.tokens[r], self.vocab, self.settings)
        return self.done[r] is None

    def _not_finite(self, r: int, logits: np.ndarray, step: int) -> None:
        """End row `r` at this step: its next-word distribution is not a number. Says where, and whether
        the model's own logits were to blame (looked at only now, on this rare path)."""
        self.done[r] = StopReason.NOT_FINITE
        last = self.history[r][-1] if self.history[r] else PAD_ID
        where = f"at step {step + 1}, after “{self.vocab.words[last]}”"
        if not np.isfinite(np.asarray(logits)).all():
            self.details[r] = f"the model's logits are not finite numbers (NaN or infinity) {where}: the sample ends there"
        else:
            self.details[r] = (f"the next-word distribution is not a number {where} (the settings or a processor "
                               "left no word possible): the sample ends there")

    def _resume_point(self, state: State, logits: np.ndarray, r: int, fed: int) -> Resume:
        pending = tuple(self.tokens[r][fed:])
        words = self.prompt_words[r] + self.vocab.decode_tokens(self.tokens[r])
        return Resume(state, None if pending else logits.copy(), pending, list(self.history[r]), self.rngs[r], words)


def stop_reason(token: int, generated: list[int], vocab: Vocabulary, settings: Settings) -> StopReason | None:
    """Why a row ends now that `token` was chosen, or None when it goes on: the one stop check of sampling,
    `:pick` and beam search.

    `generated` holds the row's generated ids, `token` included unless it is the stop token.
    """
    if token == PAD_ID:
        return StopReason.STOP_TOKEN
    if settings.stop and contains_stop(vocab.decode_tokens(generated), settings.stop):
        return StopReason.STOP_STRING
    if len(generated) >= settings.max_tokens:
        return StopReason.MAX_TOKENS
    return None


def top_words(probs: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The `n` most likely (id, probability) of a distribution [vocab], most likely first."""
    n = min(n, probs.shape[-1])
    top = np.argpartition(-probs, n - 1)[:n]
    top = top[np.argsort(-probs[top], kind="stable")]
    return [(int(i), float(probs[i])) for i in top]


def alternatives(words: Sequence[str], probs: np.ndarray, logits: np.ndarray,
                 n: int) -> list[tuple[int, str, float, float]]:
    """The `n` likeliest next words at one step as (id, word, sampling probability, model probability):
    ranked by the sampling distribution, ties (at temperature 0, every word but the chosen one) by the
    model's, so the runners-up come from the model."""
    z = np.asarray(logits, dtype=np.float64)
    model = np.exp(z - z.max())
    model /= model.sum()
    order = np.lexsort((-model, -np.asarray(probs, dtype=np.float64)))[:n]
    return [(int(i), words[i], float(probs[i]), float(model[i])) for i in order]


def contains_stop(words: list[str], stop: str) -> bool:
    """True when the generated words contain the stop string (in raw tokens or in readable text)."""
    needle = stop.lower()
    return needle in " ".join(words) or needle in detokenize(words, capitalize=False).lower()
