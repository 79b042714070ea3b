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
        """softmax(logits[r])[tokens[r]] for every row, from float32 exponentials and their float32 sum
        (numpy's pairwise sum: within ~1e-6 of the float64 softmax, as the sampler's own probabilities).

        As few numpy calls as possible: after an ONNX Runtime step each call pays to bring its code and
        data back into the cache (see `fast_draw`). A row whose exponentials overflow, or all underflow,
        is redone shifted by its largest logit.
        """
        rows, vocab = logits.shape
        buf = self._buffer(rows, vocab)
        with np.errstate(over="ignore", under="ignore"):
            np.exp(logits, out=buf)
        if rows == 1:
            total = float(buf.sum())
            token = int(tokens[0])
            if not _SAFE_TOTAL <= total < math.inf:
                return [_shifted(logits[0], token)]
            return [float(buf[0, token]) / total]
        totals = buf.sum(axis=1).tolist()
        out = []
        for r, (token, total) in enumerate(zip(tokens, totals, strict=True)):
            if _SAFE_TOTAL <= total < math.inf:
                out.append(float(buf[r, token]) / total)
            else:
                out.append(_shifted(logits[r], int(token)))
        return out


def _shifted(row: np.ndarray, token: int) -> float:
    """softmax(row)[token] with the usual guard: exponentials of row − max (float64)."""
    z = np.asarray(row, dtype=np.float64)
    with np.errstate(all="ignore"):  # logits that are not finite give NaN: the loop reports the step
        e = np.exp(z - z.max())
        return float(e[token] / e.sum())
