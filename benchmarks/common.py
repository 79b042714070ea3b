"""Shared benchmark helpers: which model to measure, and a stand-in of the same size when none is built."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def bench_model() -> tuple[Path, str]:
    """The shipped model, or (before `make model`) a random-weight LSTM of the lecture's size."""
    from recipe_repl.models import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, "shipped model"
    from recipe_repl.export.random_model import build_random_lstm

    words = ["", "[UNK]"] + [f"w{i}" for i in range(9998)]
    path = Path(tempfile.mkdtemp()) / "lecture-size.onnx"
    build_random_lstm(path, words, embedding_dim=100, units=128, scale=0.1)
    return path, "random weights, lecture size (vocab 10000, emb 100, units 128)"


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The fastest of several timed runs, in seconds (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
