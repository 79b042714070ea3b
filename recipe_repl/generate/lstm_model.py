"""The model behind the views inside the LSTM: its weights read from the file, checked against the engine.

`lstm_model(engine)` gives what `:saliency`, `:gates`, `:ablate`, `:patch`, `:units-for` and
`:vs-ngram` compute with: the weights (`model.lstm_weights`), the engine itself (for forward passes
through ONNX Runtime) and the intervention in force (`:ablate`). Reading the weights is checked
the one way that cannot be fooled by names or layout: a NumPy forward over a fixed text must give
the engine's own h, c and logits, or the views refuse the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recipe_repl.base.errors import ModelError, UserError
from recipe_repl.generate.cells import state_indices
from recipe_repl.model.engine import Engine, OnnxEngine, RecurrentState
from recipe_repl.model.lstm_weights import LstmWeights, read_lstm_weights
from recipe_repl.model.numpy_lstm import Intervention, NumpyEngine, forward

CHECK_TOLERANCE = 1e-3  # relative to the values' size: float32 arithmetic in another order differs by ~1e-6
INT8_TOLERANCE = 0.25  # an int8 output layer: ONNX Runtime also quantizes h on the fly


@dataclass(frozen=True)
class LstmModel:
    """The weights, the engine that runs them, and the intervention in force (None: the model as trained)."""

    weights: LstmWeights
    engine: Engine
    intervention: Intervention | None = None

    @property
    def units(self) -> int:
        """H."""
        return self.weights.units

    def note(self) -> str:
        """What a view should add about where its numbers come from ("" when nothing)."""
        parts = []
        if self.intervention is not None:
            parts.append(f"with {self.intervention.describe()} (:ablate off restores the model)")
        if self.weights.int8_output:
            parts.append("the output layer is int8: its weights read dequantized")
        return "; ".join(parts)


def lstm_model(engine: Engine) -> LstmModel:
    """The LSTM behind `engine`, or one clear UserError (a stateless model, a foreign graph, no file)."""
    if not isinstance(engine.start(1), RecurrentState):
        raise UserError(f"the views inside the LSTM need a stateful model, one that carries its state (h, c) from "
                        f"word to word: {engine.info.name} is {engine.info.kind} (it re-reads the text at every step)")
    state_indices(engine)
    if isinstance(engine, NumpyEngine):
        return LstmModel(engine.weights, engine, engine.intervention)
    if not isinstance(engine, OnnxEngine):
        raise UserError(f"the views inside the LSTM read its weights from an ONNX file; {engine.info.name} "
                        "was not opened from one")
    if len(engine.roles.state_inputs) != 2:
        raise ModelError(f"model {engine.info.name}: the views inside the LSTM read one-layer models "
                         f"(its state: {', '.join(engine.roles.state_inputs)})")
    units = engine.roles.state_shapes[0][0]
    weights = read_lstm_weights(engine.info.path, len(engine.vocab), units)
    check_against(weights, engine)
    return LstmModel(weights, engine)


def check_against(weights: LstmWeights, engine: Engine) -> float:
    """The largest relative difference between a NumPy forward and the engine's on a fixed text (two rows,
    from a non-zero state); a ModelError when it is more than float32 rounding."""
    V, H = weights.vocab_size, weights.units
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, V, (2, 12))
    h0 = (rng.standard_normal((2, H)) * 0.3).astype(np.float32)
    c0 = rng.standard_normal((2, H)).astype(np.float32)
    logits, state = engine.forward(tokens, RecurrentState((h0, c0)))
    assert isinstance(state, RecurrentState)
    run = forward(weights, tokens, h0, c0)
    assert run.logits is not None

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(np.asarray(a, np.float64) - b).max() / (1.0 + np.abs(b).max()))

    worst = max(rel(run.h[:, -1], state.arrays[0]), rel(run.c[:, -1], state.arrays[1]))
    out = rel(run.logits, logits)
    if not np.isfinite([worst, out]).all():  # NaN compares false with any tolerance: say it, not pass it
        raise ModelError(f"model {engine.info.name}: its state or logits are not finite numbers (NaN or infinity) "
                         "on a plain text: the views inside the LSTM cannot show them")
    if worst > CHECK_TOLERANCE or out > (INT8_TOLERANCE if weights.int8_output else CHECK_TOLERANCE):
        raise ModelError(f"model {engine.info.name}: the weights read from its file do not reproduce what ONNX "
                         f"Runtime computes (relative difference {max(worst, out):.2g}): the views inside the "
                         "LSTM cannot use this graph")
    return max(worst, out)
