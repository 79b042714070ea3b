"""Stepping: one token per row per call, the generation loop's way to run a model after the prompt.

A `BoundStepper` feeds a stateful ONNX model through I/O bindings to arrays made once, so a step
allocates nothing and converts nothing (the loop's own overhead over the bare step is what is left);
a `ForwardStepper` does the same over any engine's `forward`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from recipe_repl.model import contract
from recipe_repl.model.engine import Engine, OnnxEngine, RecurrentState, State

if TYPE_CHECKING:
    import onnxruntime as ort


class Stepper(Protocol):
    """One token per row per call, for the generation loop: logits out, the state carried inside."""

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Feed one token per row (int [rows]); return next-word logits [rows, vocab], valid until the next step."""
        ...

    def state(self) -> State:
        """The state after the tokens fed so far (a copy: it stays valid)."""
        ...


class ForwardStepper:
    """A `Stepper` over any engine's `forward`."""

    def __init__(self, engine: Engine, state: State) -> None:
        self._engine, self._state = engine, state

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Feed tokens [rows] as one time step."""
        out, self._state = self._engine.forward(np.asarray(tokens, dtype=np.int64).reshape(-1, 1), self._state)
        return out[:, -1, :]

    def state(self) -> State:
        """The current state (states are never changed in place)."""
        return self._state


class BoundStepper:
    """A stateful ONNX model stepped through I/O bindings to arrays made once: no allocation per token.

    Two bindings take turns: one reads the state from set A and writes the new one into set B, the
    other the reverse, so a step never copies the state and never rebinds anything. The token and
    logits arrays are shared by both.
    """

    def __init__(self, session: ort.InferenceSession, roles: contract.Roles, token_dtype: type[np.generic],
                 vocab_size: int, state: RecurrentState) -> None:
        rows = state.batch_size
        self._session = session
        self._tokens = np.zeros((rows, 1), dtype=token_dtype)
        self._logits = np.empty((rows, vocab_size), dtype=np.float32)
        current = tuple(np.array(a, dtype=np.float32, order="C") for a in state.arrays)
        self._sets = (current, tuple(np.empty_like(a) for a in current))
        self._bindings = (self._bind(roles, 0, 1), self._bind(roles, 1, 0))
        self._current = 0  # which set holds the state now

    def _bind(self, roles: contract.Roles, src: int, dst: int) -> Any:
        binding = self._session.io_binding()
        _bind_array(binding.bind_input, roles.tokens, self._tokens)
        for name, array in zip(roles.state_inputs, self._sets[src], strict=True):
            _bind_array(binding.bind_input, name, array)
        rows, vocab = self._logits.shape
        _bind_array(binding.bind_output, roles.logits, self._logits, (rows, 1, vocab))
        for name, array in zip(roles.state_outputs, self._sets[dst], strict=True):
            _bind_array(binding.bind_output, name, array)
        return binding

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Feed tokens [rows]; the logits array returned is overwritten by the next step."""
        self._tokens[:, 0] = tokens
        self._session.run_with_iobinding(self._bindings[self._current])
        self._current ^= 1
        return self._logits

    def state(self) -> RecurrentState:
        """A copy of the current state."""
        return RecurrentState(tuple(a.copy() for a in self._sets[self._current]))


def _bind_array(bind: Callable[..., None], name: str, array: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
    """Bind a C-contiguous numpy array's memory (no copy); the caller keeps the array alive.

    The address comes from `__array_interface__`: `array.ctypes` would import ctypes (~5 ms of start-up).
    """
    address = array.__array_interface__["data"][0]
    bind(name, "cpu", 0, array.dtype, list(shape or array.shape), address)


def keep_rows(engine: Engine, stepper: Stepper, rows: list[int]) -> Stepper:
    """A stepper that goes on from some of `stepper`'s rows, in that order (a row may come twice: beams fork).

    The live rows after some finished, or the beams kept after a step of beam search.
    """
    return open_stepper(engine, stepper.state().take(rows))


def open_stepper(engine: Engine, state: State) -> Stepper:
    """A `BoundStepper` where the engine allows one (`OnnxEngine.can_bind`), else a `ForwardStepper`."""
    if isinstance(engine, OnnxEngine) and engine.can_bind() and isinstance(state, RecurrentState):
        return BoundStepper(engine.session, engine.roles, engine.token_dtype, len(engine.vocab), state)
    return ForwardStepper(engine, state)
