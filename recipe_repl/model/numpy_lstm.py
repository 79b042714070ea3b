"""The exported LSTM recomputed in NumPy from its weights: every gate, the gradient, and interventions.

ONNX Runtime gives logits and the last (h, c); the views inside the LSTM need more — each gate at
each word, the gradient of a word's log-probability with respect to the embeddings before it, a
unit held at a value while the model reads on. The same arithmetic, written out (Hochreiter &
Schmidhuber's LSTM with a forget gate, as ONNX and Keras define it):

    z = x Wx + h Wh + b          [4H], split into i, f, g, o
    i, f, o = σ(z_i), σ(z_f), σ(z_o);  g = tanh(z_g)
    c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c');  logits = h' Wout + bout

`forward` equals ONNX Runtime's logits, h and c to 1e-5 (tests). `NumpyEngine` puts it behind the
`Engine` interface, with an `Intervention` (units of h or c held at a value from a word onward), so
that generation, `:probs` and the cell views run on the changed model while `:ablate` is on — and
plain generation never goes through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from recipe_repl.model.engine import Engine, ModelInfo, RecurrentState, State
from recipe_repl.model.lstm_weights import LstmWeights
from recipe_repl.model.vocab import Vocabulary


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))  # never overflows; and no cancellation near 0 or 1
    out: np.ndarray = np.where(z >= 0, 1.0, e) / (1.0 + e)
    return out


@dataclass(frozen=True)
class Intervention:
    """Units of h or c held at fixed values at every word from word `start` (1-based) onward.

    The cell is changed after its update, and h is then recomputed from the changed c
    (h = o ⊙ tanh(c)), so the model reads on from a consistent state; a held unit of h is set last.
    """

    kind: str  # "h" or "c"
    values: tuple[tuple[int, float], ...]  # (unit, value)
    start: int = 1

    @property
    def units(self) -> list[int]:
        """The units held."""
        return [u for u, _ in self.values]

    def describe(self) -> str:
        """In words: "c 190 = 5.0, c 17 = 0 from word 3"."""
        held = ", ".join(f"{self.kind} {u} = {v:g}" for u, v in self.values)
        return held + (f" from word {self.start}" if self.start > 1 else "")


@dataclass
class Trace:
    """Everything one forward pass computed, per row and word: [rows, words, H] (logits [rows, words, V])."""

    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray
    h: np.ndarray
    c0: np.ndarray  # [rows, H]: the cell before the first word
    logits: np.ndarray | None = None
    x: np.ndarray | None = field(default=None, repr=False)  # the embeddings read [rows, words, D]


def forward(weights: LstmWeights, tokens: np.ndarray, h0: np.ndarray | None = None, c0: np.ndarray | None = None,
            intervention: Intervention | None = None, position: int = 0, logits: bool = True,
            embeddings: np.ndarray | None = None) -> Trace:
    """Run tokens [rows, words] from (h0, c0) (zeros by default); keep every gate, h and c.

    `position` is how many words each row has read before these (for an intervention's start);
    `embeddings` [rows, words, D] replaces the looked-up vectors (integrated gradients feeds scaled
    ones). The arithmetic is in the weights' dtype.
    """
    tokens = np.asarray(tokens)
    rows, words = tokens.shape
    H = weights.units
    dtype = weights.Wh.dtype
    h = np.zeros((rows, H), dtype) if h0 is None else np.asarray(h0, dtype).reshape(rows, H)
    c = np.zeros((rows, H), dtype) if c0 is None else np.asarray(c0, dtype).reshape(rows, H)
    x = weights.E[tokens] if embeddings is None else np.asarray(embeddings, dtype)
    xz = x @ weights.Wx + weights.b  # [rows, words, 4H]: the input's part of every step at once
    out = {k: np.empty((rows, words, H), dtype) for k in ("i", "f", "g", "o", "c", "h")}
    first = c.copy()
    for t in range(words):
        z = xz[:, t] + h @ weights.Wh
        i, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H])
        g, o = np.tanh(z[:, 2 * H:3 * H]), _sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        if intervention is not None and position + t + 1 >= intervention.start:
            c, h = _hold(intervention, c, h, o)
        for key, value in (("i", i), ("f", f), ("g", g), ("o", o), ("c", c), ("h", h)):
            out[key][:, t] = value
    result = Trace(**out, c0=first, x=x)
    if logits:
        result.logits = out["h"] @ weights.Wout + weights.bout
    return result


def _hold(intervention: Intervention, c: np.ndarray, h: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    units = np.array(intervention.units, dtype=np.intp)
    values = np.array([v for _, v in intervention.values], dtype=c.dtype)
    if intervention.kind == "c":
        c = c.copy()
        c[:, units] = values
        h = h.copy()
        h[:, units] = o[:, units] * np.tanh(values)
    else:
        h = h.copy()
        h[:, units] = values
    return c, h


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p over the last axis, float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return out


def input_gradients(weights: LstmWeights, ids: Sequence[int], targets: Sequence[int],
                    intervention: Intervention | None = None, times_input: bool = False,
                    reach: int | None = None, precise: bool = True) -> np.ndarray:
    """d log p(word k) / d x_j for every target word k (1-based, ≥ 2) and every word j before it.

    Returns [len(targets), len(ids) - 1, D] (`times_input`: [len(targets), len(ids) - 1], the
    gradient dotted with the embedding, gradient × input): row r is the gradient of the log-probability
    (the model's own, temperature 1) of word targets[r] after the words before it, with respect to
    the embedding of each word; 0 for the words from targets[r] on, and for words more than `reach`
    before it (the backward pass stops there). Exact backpropagation through time in float64, every
    target going back at once as a row of one batch; an `intervention`'s held units pass no gradient.
    `precise=False` computes in float32 (about twice as fast, for averages such as the distance profile).
    """
    w = weights.as_float64() if precise else weights
    ids = list(ids)
    n = len(ids) - 1  # words that predict something: word k reads words 1 … k-1
    H = w.units
    run = forward(w, np.array([ids[:n]]), intervention=intervention, logits=False)
    assert run.x is not None
    order = np.argsort(np.asarray(targets), kind="stable")  # rows by target: the live rows are one slice
    ends = np.array([targets[r] - 2 for r in order], dtype=np.int64)  # the position whose h predicts the target
    rows = len(targets)
    out = np.zeros((rows, n) if times_input else (rows, n, w.E.shape[1]))
    dh = np.zeros((rows, H))
    dc = np.zeros((rows, H))
    reach = n if reach is None else reach
    units = np.array(intervention.units if intervention else [], dtype=np.intp)
    for t in range(n - 1, -1, -1):
        lo, hi = int(np.searchsorted(ends, t)), int(np.searchsorted(ends, t + reach))  # t ≤ end < t + reach
        if lo == hi:
            continue
        at_end = np.flatnonzero(ends == t)
        if at_end.size:  # d log softmax(h Wout + b)[target] / dh
            p = np.exp(log_softmax(run.h[0, t] @ w.Wout + w.bout))
            expected = w.Wout @ p
            for r in at_end:
                dh[r] += w.Wout[:, ids[targets[order[r]] - 1]] - expected
        held = intervention is not None and t + 1 >= intervention.start
        bh, bc = dh[lo:hi], dc[lo:hi]
        if held and intervention is not None and intervention.kind == "h":
            bh[:, units] = 0.0  # a held h is a constant
        i, f, g, o, c = (getattr(run, k)[0, t] for k in ("i", "f", "g", "o", "c"))
        c_prev = run.c[0, t - 1] if t > 0 else run.c0[0]
        tc = np.tanh(c)
        bc = bc + bh * o * (1 - tc * tc)
        if held and intervention is not None and intervention.kind == "c":
            bc[:, units] = 0.0  # a held c is a constant: nothing flows to the gates or the cell before
        dz = np.concatenate([bc * g * i * (1 - i), bc * c_prev * f * (1 - f), bc * i * (1 - g * g),
                             bh * tc * o * (1 - o)], axis=1)
        dx = dz @ w.Wx.T
        out[order[lo:hi], t] = dx @ run.x[0, t] if times_input else dx
        dh[lo:hi] = dz @ w.Wh.T
        dc[lo:hi] = bc * f
    return out


# --- the model as an engine, with an intervention ---------------------------------------------------------


class NumpyEngine:
    """The `Engine` interface over `forward`: the same model as the file, optionally with an intervention.

    Its state is (h, c, words read) per row, so an intervention knows where each row is in its text.
    """

    def __init__(self, weights: LstmWeights, vocab: Vocabulary, info: ModelInfo,
                 intervention: Intervention | None = None, base: Engine | None = None) -> None:
        self.weights, self.vocab, self.info, self.intervention = weights, vocab, info, intervention
        self.base = base  # the engine this one stands in for (`:ablate off` goes back to it)
        self.roles = _Roles()

    def start(self, batch_size: int) -> State:
        """Zero state, no words read."""
        H = self.weights.units
        return RecurrentState((np.zeros((batch_size, H), np.float32), np.zeros((batch_size, H), np.float32),
                               np.zeros((batch_size, 1), np.int64)))

    def concat(self, states: Sequence[State]) -> State:
        """Stack the rows of several states."""
        parts = [s.arrays for s in states if isinstance(s, RecurrentState)]
        return RecurrentState(tuple(np.concatenate(col, axis=0) for col in zip(*parts, strict=True)))

    def forward(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed tokens [rows, words]; logits float32 [rows, words, vocab] and the new state."""
        assert isinstance(state, RecurrentState)
        h0, c0, read = state.arrays
        tokens = np.asarray(tokens, dtype=np.int64)
        positions = np.unique(read)
        if len(positions) == 1 or self.intervention is None:
            run = forward(self.weights, tokens, h0, c0, self.intervention, int(positions[0]) if len(positions) else 0)
            assert run.logits is not None
            logits, h, c = run.logits, run.h[:, -1], run.c[:, -1]
        else:  # rows at different places in their texts (a batch of resumed samples): one at a time
            parts = [forward(self.weights, tokens[r:r + 1], h0[r:r + 1], c0[r:r + 1], self.intervention,
                             int(read[r, 0])) for r in range(len(tokens))]
            logits = np.concatenate([p.logits for p in parts if p.logits is not None])
            h = np.concatenate([p.h[:, -1] for p in parts])
            c = np.concatenate([p.c[:, -1] for p in parts])
        new = RecurrentState((h.astype(np.float32), c.astype(np.float32), read + tokens.shape[1]))
        return logits.astype(np.float32), new


@dataclass(frozen=True)
class _Roles:
    """The state's names, as `cells.state_indices` reads them from an engine (h0, c0; the count is extra)."""

    state_inputs: tuple[str, ...] = ("h0", "c0", "read")
