"""The built-in model loader: ONNX files through ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipe_repl.plugin.hookspecs import hookimpl


def _can_load(path: Path) -> bool:
    # The ONNX loader is the fallback: it claims everything and explains what is wrong with a file.
    return True


def _load(path: Path, provider: str, threads: int, vocab: Path | None = None) -> Any:
    from recipe_repl.model.engine import OnnxEngine

    return OnnxEngine(path, provider=provider, threads=threads, vocab_path=vocab)


@hookimpl
def register_model_loaders(register: Any) -> None:
    """ONNX Runtime, for stateful (LSTM state in/out) and stateless (tokens → probabilities) files."""
    register("onnx", _can_load, _load)
