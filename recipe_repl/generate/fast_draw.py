"""The fast path of `sampling.choose_word`: the same word for the same generator, with the fewest passes.

`choose_word` is the definition: float32 weights exp(x) of the processed logits (shifted by their
largest only where their sum would overflow or vanish), one float64 cumulative sum, and the first
word whose cumulative weight passes u × total, u being one `random()` of the row's generator. The
generation loop draws that same word (tests/test_fast_paths.py compares the two over many seeds and
settings); what differs is only how much work it takes:

- **No cumulative sum over the whole vocabulary.** numpy's cumsum is sequential and costs ~8 ns a
  word (40 µs a step at 5,000 words, more than the rest of the sampler), so the inverse CDF is taken
  in two levels: the weights are summed per block of BLOCK words in float64 (numpy's pairwise sum,
  the same for a block alone or in a batch); a cumulative sum over the blocks finds the block where
  u × total falls, and one over that block's words finds the word. Only the order of the float64
  additions differs from `choose_word`'s one cumulative sum (~1e-16 of the total, at a block's edge).
- **Nothing of the vocabulary's size is allocated per step**: the work arrays are made once
  (`Workspace`) and the `Draw` returned is a view into them.
- **One row (the REPL) takes a scalar path**: after an ONNX Runtime step has streamed megabytes of
  weights through the cache, every numpy call pays to bring its own code and data back, so the fewer
  calls the better (measured: ~5 µs a call on top of its own cost).

Every sum is a row's own, in a fixed order, so the word drawn for a row never depends on the batch
around it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

BLOCK = 64  # words per block of the two-level inverse CDF

# exp(x) straight from the logits is exact enough when the row's total lands in this range; a row
# whose exponentials overflow, or all underflow towards the subnormals, is shifted by its largest
# logit first (the softmax's usual guard, skipped where it is not needed: it costs two passes).
SAFE_TOTAL = 1e-20


@dataclass
class Draw:
    """One step's draw: a token and its probability per row, views into the workspace's arrays.

    Valid until the workspace's next draw; `distribution()` gives the whole distribution drawn from
    (a new array) when a listener or a table needs it.
    """

    tokens: np.ndarray  # int64 [rows]
    probs: np.ndarray  # float64 [rows]: the probability each token had (1.0 when greedy), float32-rounded
    _weights: np.ndarray  # float32 [rows, vocab] unnormalized, or the processed logits when greedy
    _totals: np.ndarray | None  # float64 [rows]; None when greedy

    def distribution(self) -> np.ndarray:
        """Probabilities float32 [rows, vocab]: exactly what `Sampler.distribution` gives for this step."""
        if self._totals is None:
            return one_hot(self.tokens, self._weights.shape, self.probs == 1.0)
        probs: np.ndarray = np.divide(self._weights, self._totals[:, None], dtype=np.float64).astype(np.float32)
        return probs


class Workspace:
    """The work arrays of one sampler, made for up to `rows` rows and reused at every step."""

    def __init__(self, rows: int, vocab: int) -> None:
        blocks = -(-vocab // BLOCK)
        self.rows, self.vocab = rows, vocab
        self.x = np.empty((rows, vocab), dtype=np.float32)  # the processed logits (when there is a chain)
        self.y = np.empty((rows, vocab), dtype=np.float32)  # their weights exp(x) (or exp(x - max))
        self.padded = np.zeros((rows, blocks * BLOCK), dtype=np.float64)  # the weights again; the tail stays 0
        self.cum = np.empty((rows, blocks), dtype=np.float64)  # block sums, then their cumulative sums
        self.totals = np.empty(rows, dtype=np.float64)
        self.tokens = np.empty(rows, dtype=np.int64)
        self.probs = np.empty(rows, dtype=np.float64)
        self._views: dict[int, tuple[np.ndarray, ...]] = {}

    def views(self, rows: int) -> tuple[np.ndarray, ...]:
        """(padded, x, y, cum, totals, tokens, probs, blocks, head) for the first `rows` rows, made once per
        row count: `blocks` is `padded` as [rows, blocks, BLOCK], `head` its first `vocab` columns.

        The weights are copied to float64 before the block sums: a reduce that casts as it goes
        allocates a buffer at every call. Views are kept because making one costs as much as a
        small numpy call.
        """
        got = self._views.get(rows)
        if got is None:
            padded = self.padded[:rows]
            got = self._views[rows] = (padded, self.x[:rows], self.y[:rows], self.cum[:rows], self.totals[:rows],
                                       self.tokens[:rows], self.probs[:rows], padded.reshape(rows, -1, BLOCK),
                                       padded[:, :self.vocab])
        return got

    def draw(self, src: np.ndarray, rngs: Sequence[np.random.Generator], greedy: bool) -> Draw:
        """`choose_word`'s softmax and draw for processed logits src [rows, vocab] float32, one row per generator.

        The top word when greedy (no randomness used); else one `random()` per row. `src` may be
        `self.x`; the result is valid until the next call.
        """
        rows, vocab = src.shape
        padded, _, y, cum, totals, tokens, probs, blocks, head = self.views(rows)
        if greedy:
            np.argmax(src, axis=1, out=tokens)
            if rows == 1:  # the chosen logit must be a number: argmax picks a NaN or +inf when there is one
                probs[0] = 1.0 if math.isfinite(src[0, tokens[0]]) else math.nan
            else:
                np.copyto(probs, np.where(np.isfinite(src[np.arange(rows), tokens]), 1.0, math.nan))
            return Draw(tokens, probs, src, None)
        if rows > 1:
            weights(src, y, padded, cum)
            np.copyto(totals, cum[:, -1])
            for r in range(rows):
                probs[r] = rngs[r].random() * totals[r]  # the targets first, then the probabilities
            _locate(padded, cum, probs, vocab, tokens)
            probs[:] = (y[np.arange(rows), tokens] / totals).astype(np.float32)
            return Draw(tokens, probs, y, totals)
        # One row (the REPL): `weights` in plain floats, the fewest numpy calls (the same sums).
        with np.errstate(over="ignore", under="ignore"):  # handled below: no RuntimeWarning in the REPL
            np.exp(src, out=y)
        np.copyto(head, y)
        np.add.reduce(blocks, axis=2, out=cum)
        cdf = list(accumulate(cum[0].tolist()))  # the same sequential sums as np.cumsum
        if not SAFE_TOTAL <= cdf[-1] < math.inf:
            row = src[0]
            with np.errstate(all="ignore"):  # NaN or inf logits give a NaN total: the loop says where
                np.subtract(row, row.max(), out=y[0])
                np.exp(y, out=y)
            np.copyto(head, y)
            np.add.reduce(blocks, axis=2, out=cum)
            cdf = list(accumulate(cum[0].tolist()))
        total = totals[0] = cdf[-1]
        token = _locate_row(padded[0], cdf, rngs[0].random() * total, vocab)
        tokens[0] = token
        # its probability as `distribution` shows it: the float64 quotient rounded to float32
        probs[0] = np.float32(float(padded[0, token]) / total)
        return Draw(tokens, probs, y, totals)


def weights(src: np.ndarray, y: np.ndarray, padded: np.ndarray, cum: np.ndarray) -> None:
    """y = exp(src) (float32), padded = y in float64, cum = the cumulative float64 block sums, row by row.

    Rows whose total is not in [SAFE_TOTAL, inf) are redone as exp(src - max): a row's own test, so
    a row's weights never depend on the batch around it.
    """
    rows, vocab = src.shape
    with np.errstate(over="ignore", under="ignore"):  # handled below: no RuntimeWarning on the terminal
        np.exp(src, out=y)
    padded[:, :vocab] = y
    block_cdf(padded, cum)
    bad = np.flatnonzero(~((cum[:, -1] >= SAFE_TOTAL) & (cum[:, -1] < math.inf)))
    for r in bad:
        with np.errstate(all="ignore"):  # NaN or inf logits give a NaN total: the loop says where
            np.subtract(src[r], src[r].max(), out=y[r])
            np.exp(y[r], out=y[r])
        padded[r, :vocab] = y[r]
        block_cdf(padded[r : r + 1], cum[r : r + 1])


def probabilities(x: np.ndarray) -> np.ndarray:
    """The softmax of processed logits x [rows, vocab] float32 as float32, from the same weights and sums
    the draw uses (so a table shows exactly the probability reported for the word drawn)."""
    rows, vocab = x.shape
    y = np.empty_like(x)
    padded = np.zeros((rows, -(-vocab // BLOCK) * BLOCK))
    cum = np.empty((rows, padded.shape[1] // BLOCK))
    weights(x, y, padded, cum)
    with np.errstate(all="ignore"):  # a row whose total is not a number stays NaN: its reader says so
        probs: np.ndarray = np.divide(y, cum[:, -1:], dtype=np.float64).astype(np.float32)
    return probs


def greedy(x: np.ndarray) -> np.ndarray:
    """The distribution a greedy choice is made from: all the mass on each row's top word; NaN for a row
    whose top logit is not a number (argmax picks a NaN or +inf when there is one)."""
    tokens = np.argmax(x, axis=-1)
    return one_hot(tokens, x.shape, np.isfinite(x[np.arange(x.shape[0]), tokens]))


def one_hot(tokens: np.ndarray, shape: tuple[int, ...], finite: np.ndarray | None = None) -> np.ndarray:
    """All the mass on one token per row: the distribution a greedy choice is made from. Rows that
    `finite` marks False are NaN throughout (their distribution is not a number)."""
    probs = np.zeros(shape, dtype=np.float32)
    probs[np.arange(shape[0]), tokens] = 1.0
    if finite is not None and not finite.all():
        probs[~finite] = np.nan
    return probs


def padded_weights(w: np.ndarray) -> np.ndarray:
    """Weights [rows, vocab] as float64 [rows, whole blocks], zero-padded."""
    rows, vocab = w.shape
    out = np.zeros((rows, -(-vocab // BLOCK) * BLOCK), dtype=np.float64)
    out[:, :vocab] = w
    return out


def block_cdf(w: np.ndarray, cum: np.ndarray) -> None:
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
    w = padded_weights(probs)
    cum = np.empty((rows, w.shape[1] // BLOCK))
    block_cdf(w, cum)
    targets = np.array([rng.random() for rng in rngs], dtype=np.float64) * cum[:, -1]
    out = np.empty(rows, dtype=np.int64)
    _locate(w, cum, targets, vocab, out)
    return out


def _possible_before(p: np.ndarray, i: int) -> int:
    """Rounding at the very end landed on an impossible word: the last possible one before it."""
    nonzero = np.flatnonzero(p[: i + 1])
    return int(nonzero[-1]) if len(nonzero) else int(np.flatnonzero(p)[0])
