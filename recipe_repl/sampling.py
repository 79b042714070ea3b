"""Sampling: the one way from logits to a word, for everything that samples (`Sampler`).

    logits ─► ban [UNK] ─► repetition penalty ─► (plugins) ─► ÷ temperature ─► top-k ─► top-p ─► min-p
           ─► softmax (or, at temperature 0, all mass on the top word) ─► draw with the row's own
              numpy Generator (argmax when greedy)

Processors and softmax work in float32 (the model's own precision) with float64 sums; see
`distribution` for why.

Each processor is a plain function `(logits [batch, vocab], context) -> logits`. Which ones run is
decided once per generation by `build_chain`, so the per-token path only calls the active ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.errors import UserError
from recipe_repl.settings import Settings
from recipe_repl.vocab import Vocabulary


@dataclass(frozen=True)
class StepContext:
    """What a processor may look at besides the logits."""

    settings: Settings
    vocab: Vocabulary
    history: Sequence[Sequence[int]]  # per row: prompt ids then generated ids so far


Processor = Callable[[np.ndarray, StepContext], np.ndarray]
# A factory sees the settings and its `:use` arguments and returns a processor, or None when it has
# nothing to do for these settings (e.g. top-k with k = 0). Bad arguments raise UserError.
ProcessorFactory = Callable[[Settings, tuple[str, ...], Vocabulary], Processor | None]


@dataclass(frozen=True)
class ProcessorSpec:
    """A named processor as registered through the `register_processors` hook."""

    name: str
    factory: ProcessorFactory
    help: str = ""
    order: int = 25  # position in the chain; temperature is 30, so lower runs on raw logits
    automatic: bool = False  # built-ins driven by settings run always; others only when `:use`d
    plugin: str = "builtin"


def is_greedy(settings: Settings) -> bool:
    """Temperature 0 means greedy: the most likely word, no randomness. Decided here and nowhere else."""
    return settings.temperature == 0


def build_chain(specs: Sequence[ProcessorSpec], settings: Settings, vocab: Vocabulary) -> list[Processor]:
    """The active processors for these settings, in chain order."""
    used = dict(settings.use)
    by_name = {s.name: s for s in specs}
    for name in used:
        if name not in by_name:
            raise UserError(f"unknown processor {name!r} (known: {', '.join(sorted(by_name))})")
    chain: list[Processor] = []
    for spec in sorted(specs, key=lambda s: s.order):
        if spec.automatic:
            proc = spec.factory(settings, (), vocab)
        elif spec.name in used:
            proc = spec.factory(settings, used[spec.name], vocab)
        else:
            continue
        if proc is not None:
            chain.append(proc)
    return chain


# --- the built-in processors (registered as plugins in recipe_repl.builtins.processors) -----------


def ban_tokens(logits: np.ndarray, token_ids: Sequence[int]) -> np.ndarray:
    """Make some tokens impossible."""
    logits[:, list(token_ids)] = -np.inf
    return logits


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Divide by T: the same distribution as the lecture's `probs ** (1 / T)` renormalised."""
    return logits / temperature


def apply_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest logits of each row (ties at the k-th value are kept too)."""
    if k >= logits.shape[-1]:
        return logits
    kth = np.partition(logits, -k, axis=-1)[:, -k][:, None]
    return np.where(logits < kth, -np.inf, logits)


def apply_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the smallest set of most likely words whose probability reaches p."""
    order = np.argsort(-logits, axis=-1)
    sorted_probs = softmax(np.take_along_axis(logits, order, axis=-1))
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the words ranked above
    drop_sorted = before >= p
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)
    return np.where(drop, -np.inf, logits)


def apply_min_p(logits: np.ndarray, min_p: float) -> np.ndarray:
    """Drop words whose probability is below min_p times the most likely word's."""
    # p_i < min_p * p_max  ⇔  logit_i < logit_max + log(min_p)
    cutoff = logits.max(axis=-1, keepdims=True) + np.log(min_p)
    return np.where(logits < cutoff, -np.inf, logits)


def apply_repetition_penalty(logits: np.ndarray, history: Sequence[Sequence[int]], penalty: float) -> np.ndarray:
    """CTRL-style penalty: divide positive logits of seen words by R, multiply negative ones."""
    for row, seen in enumerate(history):
        if len(seen) == 0:
            continue
        ids = np.unique(np.asarray(seen, dtype=np.intp))
        vals = logits[row, ids]
        logits[row, ids] = np.where(vals > 0, vals / penalty, vals * penalty)
    return logits


# --- from logits to a word -------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (a new array), the reference; rows that are all -inf are not allowed."""
    return _softmax_inplace(np.array(logits, dtype=np.float64))


def _softmax_inplace(x: np.ndarray) -> np.ndarray:
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True, dtype=np.float64)
    return x


class Sampler:
    """The processor chain for some settings, the softmax and the draw: logits in, a word out.

    The generation loop, `:probs`, `:compare`, `:pick`, the training samples and the model card all
    sample through one of these, so what a table shows is exactly what is drawn from.
    """

    def __init__(self, settings: Settings, specs: Sequence[ProcessorSpec], vocab: Vocabulary) -> None:
        self.settings = settings
        self.vocab = vocab
        self.chain = build_chain(specs, settings, vocab)
        self.greedy = is_greedy(settings)

    def distribution(self, logits: np.ndarray, history: Sequence[Sequence[int]]) -> np.ndarray:
        """Probabilities float32 [batch, vocab] for logits [batch, vocab] after the whole chain.

        `history` holds each row's prompt ids and generated ids so far (the repetition penalty
        reads it). Greedy puts all the mass on the top word: that is the distribution drawn from.
        """
        return distribution(logits, self.chain, StepContext(self.settings, self.vocab, history), self.greedy)

    def choose(self, probs: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One token id per row: the top word when greedy, else a draw with each row's own generator."""
        if self.greedy:
            top: np.ndarray = np.argmax(probs, axis=-1)
            return top
        return draw(probs, rngs)


def distribution(
    logits: np.ndarray, chain: Sequence[Processor], context: StepContext, greedy: bool = False
) -> np.ndarray:
    """Run the processor chain on logits [batch, vocab] and return probabilities (float32).

    This runs for every generated token over the whole vocabulary. float32 arrays of a batch of
    rows stay in the CPU cache where float64 ones spill out of it (measured: 4x faster softmax at
    batch 32 × 10,000 words, equal at batch 1); the row sums are taken in float64, so each
    probability is within ~1e-6 relative of the float64 reference.
    """
    x = np.array(logits, dtype=np.float32)  # a copy: processors may write in place
    for proc in chain:
        x = proc(x, context)
    if greedy:
        probs = np.zeros(x.shape, dtype=np.float32)
        probs[np.arange(x.shape[0]), np.argmax(x, axis=-1)] = 1.0
        return probs
    return _softmax_inplace(x)


def draw(probs: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """One token per row, each row drawn with its own generator (so batch size never matters).

    Inverse CDF: the first word whose cumulative probability passes u × total. A cumulative sum is
    sequential, so a row's sums are the same alone or in a batch, and so is the word; one row (the
    REPL) takes a scalar path with fewer numpy calls.
    """
    rows, vocab = probs.shape
    if rows == 1:
        row = probs[0]
        cdf = np.cumsum(row, dtype=np.float64)
        i = min(int(cdf.searchsorted(rngs[0].random() * cdf[-1], side="right")), vocab - 1)
        return np.array([i if row[i] > 0 else _possible_before(row, i)], dtype=np.int64)
    cdf = np.cumsum(probs, axis=1, dtype=np.float64)
    u = np.fromiter((rng.random() for rng in rngs), dtype=np.float64, count=rows)
    target = u * cdf[:, -1]
    out: np.ndarray = np.minimum((cdf <= target[:, None]).sum(axis=1), vocab - 1)
    for r in np.flatnonzero(probs[np.arange(rows), out] <= 0):
        out[r] = _possible_before(probs[r], int(out[r]))
    return out


def _possible_before(p: np.ndarray, i: int) -> int:
    """Rounding at the very end landed on an impossible word: the last possible one before it."""
    nonzero = np.flatnonzero(p[: i + 1])
    return int(nonzero[-1]) if len(nonzero) else int(np.flatnonzero(p)[0])


def row_rng(seed: int | None, row_key: int) -> np.random.Generator:
    """The generator for one sample: seeded by (seed, sample number) so it is batch-independent."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, row_key])
