"""The model's own probability of each chosen word (temperature 1, no processors), beside the sampling one.

A word is drawn from the sampling distribution (after temperature, top-k, …); what the model itself
thought of it is the softmax of the raw logits. When the settings change nothing (temperature 1, no
processor in the chain) the two are one and the same number, and nothing more is computed. Otherwise
the loop asks `ModelProbs.chosen` for the chosen words' probabilities from the step's logits, only
when somebody reads them (the REPL's footer and heat, JSON records): one exp pass over the logits,
in work arrays reused from step to step. Beam search and kept texts read them afterwards instead
(`scoring.read_back`): one pass of the model over the text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# exp(x) straight from the logits is exact enough when the row's total lands in this range; otherwise
# the row is shifted by its largest logit first (the softmax's usual guard, skipped when not needed).
_SAFE_TOTAL = 1e-20


class ModelProbs:
    """Work arrays for the model's probability of chosen tokens, reused from step to step."""

    def __init__(self) -> None:
        self._buf: np.ndarray | None = None

    def _buffer(self, rows: int, vocab: int) -> np.ndarray:
        if self._buf is None or self._buf.shape[0] < rows or self._buf.shape[1] != vocab:
            self._buf = np.empty((rows, vocab), dtype=np.float32)
        return self._buf[:rows]

    def chosen(self, logits: np.ndarray, tokens: Sequence[int]) -> list[float]:
        """softmax(logits[r])[tokens[r]] for every row: float64 sums of float32 exponentials."""
        rows, vocab = logits.shape
        buf = self._buffer(rows, vocab)
        with np.errstate(over="ignore", under="ignore"):
            np.exp(logits, out=buf)
        totals = np.add.reduce(buf, axis=1, dtype=np.float64)
        bad = np.flatnonzero(~((totals >= _SAFE_TOTAL) & (totals < math.inf)))
        for r in bad:
            np.subtract(logits[r], logits[r].max(), out=buf[r])
            np.exp(buf[r], out=buf[r])
            totals[r] = np.add.reduce(buf[r], dtype=np.float64)
        picked = buf[np.arange(rows), np.asarray(tokens, dtype=np.intp)].astype(np.float64)
        result: list[float] = (picked / totals).tolist()
        return result
