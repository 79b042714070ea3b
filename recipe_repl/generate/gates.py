"""The gates, word by word: what each unit let in, kept, erased and showed, and which units integrate or reset.

For one unit and each word read, the NumPy recomputation (`model.numpy_lstm.forward`, equal to ONNX
Runtime's h and c to 1e-5) gives the input gate i, forget gate f, output gate o and candidate g, and
from them the memory cell's bookkeeping:

    written = i ⊙ g     kept = f ⊙ c_before     erased = (1 − f) ⊙ c_before     c = kept + written

Over many texts, a unit whose forget gate is above 0.9 at most words carries its cell far (an
*integrator*); one whose forget gate is below 0.1 at most words starts afresh at each word (a
*resetter*) — Karpathy, Johnson & Fei-Fei 2015, §4.2, read the saturation of each gate this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.generate import cells
from recipe_repl.generate.lstm_model import LstmModel
from recipe_repl.model.numpy_lstm import forward

HIGH, LOW = 0.9, 0.1  # a forget gate above HIGH keeps the cell; below LOW it erases it
HINT_MIN = 0.5  # |correlation| from which a unit's strongest feature is named as its hint


@dataclass(frozen=True)
class UnitGates:
    """One unit's gates and cell after each word read (arrays [words])."""

    unit: int
    words: list[str]
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray
    c_before: np.ndarray  # the cell before each word
    h: np.ndarray

    @property
    def written(self) -> np.ndarray:
        """What each word wrote into the cell, i ⊙ g."""
        out: np.ndarray = self.i * self.g
        return out

    @property
    def kept(self) -> np.ndarray:
        """What the cell kept of its value before the word, f ⊙ c_before."""
        out: np.ndarray = self.f * self.c_before
        return out

    @property
    def erased(self) -> np.ndarray:
        """What the cell let go of, (1 − f) ⊙ c_before."""
        out: np.ndarray = (1.0 - self.f) * self.c_before
        return out


def unit_gates(model: LstmModel, ids: Sequence[int], unit: int) -> UnitGates:
    """Unit `unit`'s gates after each of the words `ids` (read from a fresh state)."""
    cells.check_unit(unit, model.units)
    run = forward(model.weights, np.array([list(ids)]), intervention=model.intervention, logits=False)
    c = run.c[0, :, unit]
    before = np.concatenate([run.c0[0, unit:unit + 1], c[:-1]])
    vocab = model.engine.vocab
    return UnitGates(unit, [vocab.words[i] for i in ids], run.i[0, :, unit], run.f[0, :, unit], run.g[0, :, unit],
                     run.o[0, :, unit], c, before, run.h[0, :, unit])


def trace_texts(model: LstmModel, texts: Sequence[Sequence[int]]) -> tuple[list[cells.Trace], list[np.ndarray]]:
    """h, c and the forget gate after every word of every text (NumPy, `cells.MAX_ROWS` texts at a time, each
    padded at its end: padding after a word never changes the state at that word)."""
    traces: list[cells.Trace] = []
    forget: list[np.ndarray] = []
    vocab = model.engine.vocab
    for chunk, tokens in cells.padded_chunks(texts):
        run = forward(model.weights, tokens, intervention=model.intervention, logits=False)
        for r, ids in enumerate(chunk):
            n = len(ids)
            traces.append(cells.Trace([vocab.words[i] for i in ids], run.h[r, :n].copy(), run.c[r, :n].copy()))
            forget.append(run.f[r, :n].copy())
    return traces, forget


@dataclass(frozen=True)
class Saturation:
    """Per unit, the share of words at which its forget gate was above `HIGH` (keeps) or below `LOW` (erases)."""

    integrator: np.ndarray  # [H]
    resetter: np.ndarray  # [H]
    words: int
    texts: int

    def most(self, which: str, top: int = 5) -> list[int]:
        """The `top` units with the largest share of `which` ("integrator" or "resetter"); ties by number."""
        share = self.integrator if which == "integrator" else self.resetter
        order = np.lexsort((np.arange(share.size), -share))[:top]
        return [int(u) for u in order]


def saturation(forget: Sequence[np.ndarray], texts: int) -> Saturation:
    """How often each unit's forget gate saturates over the words of these texts."""
    f = np.concatenate(list(forget), axis=0) if forget else np.zeros((0, 0))
    if f.shape[0] == 0:
        raise UserError("no words to summarize the gates over")
    return Saturation((f > HIGH).mean(axis=0), (f < LOW).mean(axis=0), int(f.shape[0]), texts)


def hints(traces: Sequence[cells.Trace], features: Mapping[str, cells.Feature], kind: str
          ) -> dict[int, tuple[str, float]]:
    """Each unit's strongest built-in or plugin feature (as `:cells find` ranks them) where |r| ≥ `HINT_MIN`."""
    best: dict[int, tuple[str, float]] = {}
    for name, feature in sorted(features.items()):
        try:
            values = [cells.feature_values(name, feature, t.words) for t in traces]
            r = cells.correlations(traces, values, kind)
        except UserError:  # a feature that never changes over these texts, or a plugin's broken one
            continue
        for unit in np.flatnonzero(np.abs(r) >= HINT_MIN):
            u = int(unit)
            if u not in best or abs(r[u]) > abs(best[u][1]):
                best[u] = (name, float(r[u]))
    return best
