"""Sampling: the one way from logits to a word, for everything that samples.

`choose_word` below is the whole path for one word, in order, to be read in one sitting (the lecture's
`sample_from` grown up):

    logits ─► ban [UNK] ─► repetition penalty ─► (plugins) ─► ÷ temperature ─► top-k ─► top-p ─► min-p
           ─► softmax (or, at temperature 0, the top word) ─► the inverse CDF at u = the row's own
              numpy Generator's `random()`

It is the reference and the tests' oracle. What generates runs the same chain through a `Sampler`:
the processors registered through the `register_processors` hook (the built-ins in
recipe_repl/builtins/processors.py, in `CHAIN`'s order), then `fast_draw`, which draws exactly
`choose_word`'s word with fewer passes over the vocabulary and no allocation.

Each processor is a plain function `(logits [batch, vocab], context) -> logits`. Which ones run is
decided once per generation by `build_chain`, so the per-token path only calls the active ones.
Processors and weights are float32 (the model's own precision), sums float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate import fast_draw
from recipe_repl.generate.fast_draw import Draw, draw
from recipe_repl.model.vocab import UNK_ID, Vocabulary

# The built-in processors in the order they run. recipe_repl/builtins/processors.py registers each
# through the `register_processors` hook at its place here (`chain_order`); a plugin's processor runs
# at its own `order`, by default PLUGIN_ORDER: on the raw logits, after the repetition penalty.
CHAIN = ("ban-unk", "repetition", "temperature", "top-k", "top-p", "min-p")
PLUGIN_ORDER = 25


def choose_word(logits: np.ndarray, settings: Settings, rng: np.random.Generator,
                history: Sequence[int] = ()) -> int:
    """The reference sampler: one word id from one row of logits [vocab], the built-in chain in `CHAIN`'s order.

    `history` is the row's prompt and generated ids (the repetition penalty reads it). The generation
    loop's `Sampler.sample` draws exactly this word for the same generator; it also runs plugins'
    processors (`:use`), which this reference leaves out.
    """
    x = np.array(logits, dtype=np.float32)[None, :]  # one row of [rows, vocab], float32 as the model computes
    if not settings.allow_unk:
        x = ban_tokens(x, [UNK_ID])  # ban-unk
    if settings.repetition_penalty != 1.0:
        x = apply_repetition_penalty(x, [history], settings.repetition_penalty)  # repetition
    if not is_greedy(settings):
        x = apply_temperature(x, settings.temperature)  # temperature
    if settings.top_k > 0:
        x = apply_top_k(x, settings.top_k)  # top-k
    if settings.top_p < 1.0:
        x = apply_top_p(x, settings.top_p)  # top-p
    if settings.min_p > 0:
        x = apply_min_p(x, settings.min_p)  # min-p
    if is_greedy(settings):
        return int(np.argmax(x))  # temperature 0: the top word left, no randomness
    with np.errstate(over="ignore", under="ignore"):
        weights = np.exp(x[0])  # the softmax before dividing by the sum (the draw needs no division)
    if not fast_draw.SAFE_TOTAL <= weights.sum(dtype=np.float64) < math.inf:
        weights = np.exp(x[0] - x[0].max())  # the usual shift by the max, where the sum overflows or vanishes
    cdf = np.cumsum(weights, dtype=np.float64)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))  # first to pass u × total


def chain_order(name: str) -> int:
    """The `order` a built-in processor registers with: 10, 20, … by its place in `CHAIN`."""
    return 10 * (CHAIN.index(name) + 1)


def is_greedy(settings: Settings) -> bool:
    """Temperature 0 (or any below `GREEDY_BELOW`) means greedy: the most likely word, no randomness.
    The rule is the settings' own (`Settings.greedy`), so a caption says it the same way."""
    return settings.greedy


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
    order: int = PLUGIN_ORDER  # position in the chain (see CHAIN and chain_order)
    automatic: bool = False  # built-ins driven by settings run always; others only when `:use`d
    plugin: str = "builtin"


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


# --- the built-in processors (registered through the hook in recipe_repl/builtins/processors.py) ----


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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (a new array), the textbook one; rows that are all -inf are not allowed."""
    x = np.array(logits, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # logits that are not finite give NaN rows, which the loop reports
        x -= x.max(axis=-1, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=-1, keepdims=True)
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
        self._work: fast_draw.Workspace | None = None

    def distribution(self, logits: np.ndarray, history: Sequence[Sequence[int]]) -> np.ndarray:
        """Probabilities float32 [batch, vocab] for logits [batch, vocab] after the whole chain.

        `history` holds each row's prompt ids and generated ids so far (the repetition penalty
        reads it). Greedy puts all the mass on the top word: that is the distribution drawn from.
        """
        return distribution(logits, self.chain, StepContext(self.settings, self.vocab, history), self.greedy)

    def choose(self, probs: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One token id per row of `probs`: the top word when greedy, else a draw with each row's own generator."""
        if self.greedy:
            top: np.ndarray = np.argmax(probs, axis=-1)
            return top
        return draw(probs, rngs)

    def sample(self, logits: np.ndarray, history: Sequence[Sequence[int]],
               rngs: Sequence[np.random.Generator]) -> Draw:
        """`choose_word` for every row: the chain, then `fast_draw`'s one pass. The generation loop's step.

        The same word as `choose_word` for each row's generator, with the probability `distribution`
        shows for it; nothing of the vocabulary's size is allocated. Valid until the next call.
        """
        rows, vocab = logits.shape
        work = self._work
        if work is None or work.rows < rows or work.vocab != vocab:
            work = self._work = fast_draw.Workspace(rows, vocab)
        x = logits
        if self.chain or logits.dtype != np.float32:
            x = work.views(rows)[1]
            np.copyto(x, logits, casting="same_kind")  # processors may write in place: they get our copy
            context = StepContext(self.settings, self.vocab, history)
            for proc in self.chain:
                x = proc(x, context)
        return work.draw(x, rngs, self.greedy)


def distribution(
    logits: np.ndarray, chain: Sequence[Processor], context: StepContext, greedy: bool = False
) -> np.ndarray:
    """Run the processor chain on logits [batch, vocab] and return probabilities (float32).

    The chain and the exponentials run in float32 (the model's own precision; float32 rows of a
    batch stay in the CPU cache where float64 ones spill out of it); the sums are float64 and the
    same block sums the draw uses, so each probability is within ~1e-7 relative of the float64
    reference and is exactly the one `Sampler.sample` reports for the word it draws.
    """
    x = np.array(logits, dtype=np.float32)  # a copy: processors may write in place
    for proc in chain:
        x = proc(x, context)
    if greedy:
        return fast_draw.greedy(x)
    return fast_draw.probabilities(x)


def row_rng(seed: int | None, row_key: int) -> np.random.Generator:
    """The generator for one sample: seeded by (seed, sample number) so it is batch-independent."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, row_key])
