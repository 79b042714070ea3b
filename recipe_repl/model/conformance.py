"""Checking an engine that a plugin's model loader returned, as the built-in loader checks an ONNX file.

The built-in `OnnxEngine` checks its file against the ONNX contract and runs one probe step when it
opens. An engine from a plugin's loader gets the same treatment here, against the `Engine`
protocol: the attributes the generation loop uses, then one probe step of two rows of two tokens
whose logits must be finite floats [2, 2, vocab] and whose state must know its rows. A foreign
object is one line naming the loader, not an AttributeError in the middle of a generation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recipe_repl.base.errors import ModelError, UserError
from recipe_repl.model.engine import ModelInfo
from recipe_repl.model.vocab import Vocabulary


def check_engine(engine: Any, name: str) -> None:
    """Raise ModelError naming `name` (say, "plugin x: loader y") unless `engine` keeps the Engine protocol."""
    what = type(engine).__name__
    missing = [a for a in ("vocab", "info", "start", "forward", "concat") if not hasattr(engine, a)]
    if missing:
        raise ModelError(f"{name} returned {what}, not a model engine (it has no {', '.join(missing)})")
    if not isinstance(engine.vocab, Vocabulary):
        raise ModelError(f"{name} returned an engine whose vocab is {type(engine.vocab).__name__}, not a Vocabulary")
    if not isinstance(engine.info, ModelInfo):
        raise ModelError(f"{name} returned an engine whose info is {type(engine.info).__name__}, not a ModelInfo")
    for method in ("start", "forward", "concat"):
        if not callable(getattr(engine, method)):
            raise ModelError(f"{name} returned an engine whose {method} is not callable")
    size = len(engine.vocab)
    try:
        state = engine.start(2)
        logits, after = engine.forward(np.full((2, 2), min(2, size - 1), dtype=np.int64), state)
        rows = (int(state.batch_size), int(after.batch_size))
        engine.concat([after.take([1]), after.take([0])])
    except UserError:
        raise
    except Exception as exc:  # the plugin's own code: its bug is one line naming it
        raise ModelError(f"{name}: its engine fails a probe step: {type(exc).__name__}: {exc}") from None
    logits = np.asarray(logits)
    if logits.shape != (2, 2, size) or logits.dtype.kind != "f":
        raise ModelError(f"{name}: a probe step gave logits {logits.dtype}{list(logits.shape)}, "
                         f"not float[2, 2, {size}]")
    if rows != (2, 2):
        raise ModelError(f"{name}: a probe step's state has {rows} rows, not 2")
    if not np.isfinite(logits).all():
        raise ModelError(f"{name}: a probe step gave non-finite values (NaN or inf) in the logits")
