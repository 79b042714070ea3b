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

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.model.vocab import Vocabulary


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
#
# The draw is an inverse CDF in two levels, so that no step takes a cumulative sum over the whole
# vocabulary (numpy's cumsum is sequential and costs ~8 ns a word: 40 µs a step at 5,000 words, more
# than the rest of the sampler). The float32 weights exp(x - max) are summed per block of BLOCK words
# in float64 (numpy's pairwise sum, the same for a block alone or in a batch); a cumulative sum over
# the blocks finds the block where u × total falls, and one over that block's words finds the word.
# Every sum is a row's own, in a fixed order, so the word drawn for a row never depends on the batch
# around it; it is the plain inverse-CDF word up to float64 rounding at the block edges.
#
# One row (the REPL) takes a scalar path: after an ONNX Runtime step has streamed megabytes of
# weights through the cache, every numpy call pays to bring its own code and data back, so the
# fewer calls the better (measured: ~5 µs a call on top of its own cost).

BLOCK = 64  # words per block of the two-level inverse CDF


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (a new array), the reference; rows that are all -inf are not allowed."""
    x = np.array(logits, dtype=np.float64)
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


class _Scratch:
    """The sampler's work arrays for up to `rows` rows: allocated once, reused at every step."""

    def __init__(self, rows: int, vocab: int) -> None:
        blocks = -(-vocab // BLOCK)
        self.rows, self.vocab, self.blocks = rows, vocab, blocks
        self.x = np.empty((rows, vocab), dtype=np.float32)  # the processed logits (when there is a chain)
        self.y = np.empty((rows, vocab), dtype=np.float32)  # their weights exp(x) (or exp(x - max))
        self.padded = np.zeros((rows, blocks * BLOCK), dtype=np.float64)  # the weights again; the tail stays 0
        self.cum = np.empty((rows, blocks), dtype=np.float64)  # block sums, then their cumulative sums
        self.totals = np.empty(rows, dtype=np.float64)
        self.tokens = np.empty(rows, dtype=np.int64)
        self.probs = np.empty(rows, dtype=np.float64)
        self._views: dict[int, tuple[np.ndarray, ...]] = {}

    def views(self, rows: int) -> tuple[np.ndarray, ...]:
        """(padded, x, y, cum, totals, tokens, probs) for the first `rows` rows, made once per row count.

        The weights are copied to float64 before the block sums: a reduce that casts as it goes
        allocates a buffer at every call.
        """
        got = self._views.get(rows)
        if got is None:
            got = self._views[rows] = (self.padded[:rows], self.x[:rows], self.y[:rows], self.cum[:rows],
                                       self.totals[:rows], self.tokens[:rows], self.probs[:rows])
        return got


@dataclass
class Draw:
    """One step's draw: a token and its probability per row, views into the sampler's work arrays.

    Valid until the sampler's next step; `distribution()` gives the whole distribution drawn from
    (a new array) when a listener or a table needs it.
    """

    tokens: np.ndarray  # int64 [rows]
    probs: np.ndarray  # float64 [rows]: the probability each token had (1.0 when greedy), float32-rounded
    _weights: np.ndarray  # float32 [rows, vocab] unnormalized, or the processed logits when greedy
    _totals: np.ndarray | None  # float64 [rows]; None when greedy

    def distribution(self) -> np.ndarray:
        """Probabilities float32 [rows, vocab]: exactly what `Sampler.distribution` gives for this step."""
        if self._totals is None:
            return _one_hot(self.tokens, self._weights.shape)
        probs: np.ndarray = np.divide(self._weights, self._totals[:, None], dtype=np.float64).astype(np.float32)
        return probs


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
        self._scratch: _Scratch | None = None

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
        """Chain, softmax and draw in one pass over the sampler's own work arrays: the generation loop's step.

        Draws the same word, with the same probability, as `choose` on `distribution` would (up to
        the float32 rounding of the normalized probabilities), with one `random()` per row; nothing
        of the vocabulary's size is allocated. The result is only valid until the next call.
        """
        rows, vocab = logits.shape
        sc = self._scratch
        if sc is None or sc.rows < rows or sc.vocab != vocab:
            sc = self._scratch = _Scratch(rows, vocab)
        padded, x, y, cum, totals, tokens, probs = sc.views(rows)
        src = logits
        if self.chain or logits.dtype != np.float32:
            np.copyto(x, logits, casting="same_kind")  # processors may write in place: they get our copy
            context = StepContext(self.settings, self.vocab, history)
            src = x
            for proc in self.chain:
                src = proc(src, context)
        if self.greedy:
            np.argmax(src, axis=1, out=tokens)
            probs.fill(1.0)
            return Draw(tokens, probs, src, None)
        if rows > 1:
            _weights(src, y, padded, cum)
            np.copyto(totals, cum[:, -1])
            for r in range(rows):
                probs[r] = rngs[r].random() * totals[r]  # the targets first, then the probabilities
            _locate(padded, cum, probs, vocab, tokens)
            probs[:] = (y[np.arange(rows), tokens] / totals).astype(np.float32)
            return Draw(tokens, probs, y, totals)
        # One row (the REPL): `_weights` in plain floats, the fewest numpy calls (the same sums).
        blocks = padded.reshape(1, -1, BLOCK)
        with np.errstate(over="ignore", under="ignore"):  # handled below: no RuntimeWarning in the REPL
            np.exp(src, out=y)
        np.copyto(padded[:, :vocab], y)
        np.add.reduce(blocks, axis=2, out=cum)
        cdf = list(accumulate(cum[0].tolist()))  # the same sequential sums as np.cumsum
        if not _SAFE_TOTAL <= cdf[-1] < math.inf:
            row = src[0]
            np.subtract(row, row.max(), out=y[0])
            np.exp(y, out=y)
            np.copyto(padded[:, :vocab], y)
            np.add.reduce(blocks, axis=2, out=cum)
            cdf = list(accumulate(cum[0].tolist()))
        total = totals[0] = cdf[-1]
        token = _locate_row(padded[0], cdf, rngs[0].random() * total, vocab)
        tokens[0] = token
        # its probability as `distribution` shows it: the float64 quotient rounded to float32
        probs[0] = np.float32(float(padded[0, token]) / total)
        return Draw(tokens, probs, y, totals)


# exp(x) straight from the logits is exact enough when the row's total lands in this range; a row
# whose exponentials overflow, or all underflow towards the subnormals, is shifted by its largest
# logit first (the softmax's usual guard, skipped where it is not needed: it costs two passes).
_SAFE_TOTAL = 1e-20


def _weights(src: np.ndarray, y: np.ndarray, padded: np.ndarray, cum: np.ndarray) -> None:
    """y = exp(src) (float32), padded = y in float64, cum = the cumulative float64 block sums, row by row.

    Rows whose total is not in [_SAFE_TOTAL, inf) are redone as exp(src - max): a row's own test, so
    a row's weights never depend on the batch around it.
    """
    rows, vocab = src.shape
    with np.errstate(over="ignore", under="ignore"):  # handled below: no RuntimeWarning on the terminal
        np.exp(src, out=y)
    padded[:, :vocab] = y
    _block_cdf(padded, cum)
    bad = np.flatnonzero(~((cum[:, -1] >= _SAFE_TOTAL) & (cum[:, -1] < math.inf)))
    for r in bad:
        np.subtract(src[r], src[r].max(), out=y[r])
        np.exp(y[r], out=y[r])
        padded[r, :vocab] = y[r]
        _block_cdf(padded[r : r + 1], cum[r : r + 1])


def _one_hot(tokens: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    probs = np.zeros(shape, dtype=np.float32)
    probs[np.arange(shape[0]), tokens] = 1.0
    return probs


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
        return _one_hot(np.argmax(x, axis=-1), x.shape)
    rows, vocab = x.shape
    y = np.empty_like(x)
    padded = np.zeros((rows, -(-vocab // BLOCK) * BLOCK))
    cum = np.empty((rows, padded.shape[1] // BLOCK))
    _weights(x, y, padded, cum)
    return np.divide(y, cum[:, -1:], dtype=np.float64).astype(np.float32)


def _padded(weights: np.ndarray) -> np.ndarray:
    """Weights [rows, vocab] as float64 [rows, whole blocks], zero-padded."""
    rows, vocab = weights.shape
    w = np.zeros((rows, -(-vocab // BLOCK) * BLOCK), dtype=np.float64)
    w[:, :vocab] = weights
    return w


def _block_cdf(w: np.ndarray, cum: np.ndarray) -> None:
    """Cumulative float64 block sums of zero-padded weights w [rows, blocks × BLOCK] into cum [rows, blocks]."""
    rows, blocks = cum.shape
    np.add.reduce(w.reshape(rows, blocks, BLOCK), axis=2, out=cum)
    np.cumsum(cum, axis=1, out=cum)


def _locate(w: np.ndarray, cum: np.ndarray, targets: np.ndarray, vocab: int, out: np.ndarray) -> None:
    """The word where each row's cumulative weight first passes its target (the inverse CDF).

    Rows one at a time in plain floats, or all at once in numpy: the same sums in the same order,
    so the same words.
    """
    rows, blocks = cum.shape
    if rows <= 4:
        for r in range(rows):
            out[r] = _locate_row(w[r], cum[r].tolist(), float(targets[r]), vocab)
        return
    k = np.minimum((cum <= targets[:, None]).sum(axis=1), blocks - 1)
    base = np.where(k > 0, cum[np.arange(rows), np.maximum(k - 1, 0)], 0.0)
    inner = np.empty((rows, BLOCK + 1))
    inner[:, 0] = base
    inner[:, 1:] = w.reshape(rows, blocks, BLOCK)[np.arange(rows), k]
    np.cumsum(inner, axis=1, out=inner)
    j = np.minimum((inner[:, 1:] <= targets[:, None]).sum(axis=1), BLOCK - 1)
    out[:] = k * BLOCK + j
    for bad in np.flatnonzero((out >= vocab) | (w[np.arange(rows), np.minimum(out, vocab - 1)] <= 0)):
        out[bad] = _possible_before(w[bad, :vocab], int(min(out[bad], vocab - 1)))


def _locate_row(w: np.ndarray, cdf: list[float], target: float, vocab: int) -> int:
    """One row of `_locate`: `cdf` holds the row's cumulative block sums."""
    k = min(bisect_right(cdf, target), len(cdf) - 1)
    acc = cdf[k - 1] if k else 0.0
    start = k * BLOCK
    j = BLOCK - 1
    for n, v in enumerate(w[start:start + BLOCK].tolist()):
        acc += v
        if acc > target:
            j = n
            break
    i = start + j
    if i >= vocab or w[i] <= 0:  # rounding at a block's end landed on padding or an impossible word
        return _possible_before(w[:vocab], min(i, vocab - 1))
    return i


def draw(probs: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """One token per row of probs [rows, vocab] (need not be normalized), each row with its own generator.

    The two-level inverse CDF described above, with one `random()` per row: the first word whose
    cumulative probability passes u × total. Batch size never changes a row's word.
    """
    rows, vocab = probs.shape
    w = _padded(probs)
    cum = np.empty((rows, w.shape[1] // BLOCK))
    _block_cdf(w, cum)
    targets = np.array([rng.random() for rng in rngs], dtype=np.float64) * cum[:, -1]
    out = np.empty(rows, dtype=np.int64)
    _locate(w, cum, targets, vocab, out)
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
