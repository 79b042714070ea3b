"""An interpolated Kneser–Ney 3-gram over token ids: the baseline the LSTM must beat (numpy + dicts).

P3(w|u,v) = max(c(uvw) − D3, 0)/c(uv·) + D3·T(uv·)/c(uv·) · P2(w|v)
P2(w|v)   = max(N(·vw) − D2, 0)/N(·v·) + D2·T(·v·)/N(·v·) · P1(w)      N = continuation counts
P1(w)     = max(N(·w) − D1, 0)/N(··) + D1·T(··)/N(··) · 1/V
An unseen context hands its whole mass to the lower order, so every distribution sums to 1 over V.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

BOS = -1  # padding context before the first token


def _discount(counts: Iterable[int]) -> float:
    """D = n1 / (n1 + 2 n2) (Ney et al.), kept in (0, 1)."""
    values = list(counts)
    n1 = sum(1 for c in values if c == 1)
    n2 = sum(1 for c in values if c == 2)
    if n1 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)


class _Table:
    """Sparse next-token counts for one context: ids, counts, their total and number of types."""

    __slots__ = ("ids", "counts", "total", "types", "_index")

    def __init__(self, counter: dict[int, int]):
        self.ids = np.fromiter(counter.keys(), np.int64, len(counter))
        self.counts = np.fromiter(counter.values(), np.float64, len(counter))
        self.total = float(self.counts.sum())
        self.types = len(counter)
        self._index: dict[int, int] | None = None  # id → count, built on the first `count`

    def count(self, w: int) -> float:
        """How often w follows this context (0 when never)."""
        if self._index is None:
            self._index = dict(zip(self.ids.tolist(), self.counts.tolist(), strict=True))
        return self._index.get(w, 0.0)


class KneserNey3:
    def __init__(self, vocab_size: int):
        self.V = vocab_size

    def fit(self, sequences: Iterable[Sequence[int]]) -> KneserNey3:
        tri: dict[tuple[int, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for seq in sequences:
            padded = [BOS, BOS, *seq]
            for i in range(2, len(padded)):
                tri[(padded[i - 2], padded[i - 1])][padded[i]] += 1
        bi: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # N(·vw)
        for (_u, v), nxt in tri.items():
            for w in nxt:
                bi[v][w] += 1
        uni: dict[int, int] = defaultdict(int)  # N(·w): distinct v before w
        for _v, nxt in bi.items():
            for w in nxt:
                uni[w] += 1
        self.D3 = _discount(c for nxt in tri.values() for c in nxt.values())
        self.D2 = _discount(c for nxt in bi.values() for c in nxt.values())
        self.D1 = _discount(uni.values())
        self.tri = {k: _Table(v) for k, v in tri.items()}
        self.bi = {k: _Table(v) for k, v in bi.items()}
        total = float(sum(uni.values()))
        p1 = np.zeros(self.V)
        for w, n in uni.items():
            if 0 <= w < self.V:
                p1[w] = max(n - self.D1, 0.0) / total
        p1 += self.D1 * len(uni) / total / self.V
        self.p1: np.ndarray = p1 / p1.sum()  # exact normalisation (guards against ids outside the vocabulary)
        return self

    def _p2(self, v: int) -> np.ndarray:
        t = self.bi.get(v)
        if t is None:
            return self.p1
        p: np.ndarray = self.p1 * (self.D2 * t.types / t.total)
        np.add.at(p, t.ids, np.maximum(t.counts - self.D2, 0.0) / t.total)
        return p

    def distribution(self, u: int, v: int) -> np.ndarray:
        """P(· | u, v) over the whole vocabulary (sums to 1)."""
        p2 = self._p2(v)
        t = self.tri.get((u, v))
        if t is None:
            return p2
        p = p2 * (self.D3 * t.types / t.total)
        np.add.at(p, t.ids, np.maximum(t.counts - self.D3, 0.0) / t.total)
        return p

    def prob(self, u: int, v: int, w: int) -> float:
        """P(w | u, v) alone: `distribution(u, v)[w]` without building the whole distribution."""
        p = float(self.p1[w]) if 0 <= w < self.V else 0.0
        for table, d in ((self.bi.get(v), self.D2), (self.tri.get((u, v)), self.D3)):
            if table is not None:
                p = max(table.count(w) - d, 0.0) / table.total + d * table.types / table.total * p
        return p

    def token_nlls(self, seq: Sequence[int]) -> np.ndarray:
        """The negative log-likelihood of each target seq[1:] (element k is that of seq[k + 1])."""
        padded = [BOS, BOS, *seq]
        return np.array([-np.log(max(self.prob(padded[i - 2], padded[i - 1], padded[i]), 1e-300))
                         for i in range(3, len(padded))], np.float64)

    def score(self, sequences: Iterable[Sequence[int]], skip_first: int = 1) -> dict[str, Any]:
        """Mean negative log-likelihood, perplexity, top-1/top-5 accuracy over targets seq[skip_first:]."""
        nll = 0.0
        n = top1 = top5 = 0
        for seq in sequences:
            padded = [BOS, BOS, *seq]
            for i in range(2 + skip_first, len(padded)):
                p = self.distribution(padded[i - 2], padded[i - 1])
                w = padded[i]
                nll -= float(np.log(max(p[w], 1e-300)))
                best = np.argpartition(-p, 5)[:5] if self.V > 5 else np.arange(self.V)
                top1 += int(np.argmax(p) == w)
                top5 += int(w in best)
                n += 1
        mean = nll / max(n, 1)
        return {"tokens": n, "nll": mean, "perplexity": float(np.exp(mean)), "top1": top1 / max(n, 1),
                "top5": top5 / max(n, 1)}
