"""Shared benchmark helpers: which model to measure, a stand-in of the same size when none is built, timing."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENV_MODEL = "RECIPE_REPL_BENCH_MODEL"  # measure this .onnx file instead of the shipped one


def bench_model() -> tuple[Path, str]:
    """$RECIPE_REPL_BENCH_MODEL, the shipped model, or (before `make model`) a random-weight LSTM of the
    lecture's size."""
    from recipe_repl.models import DEFAULT_MODEL

    if os.environ.get(ENV_MODEL):
        return Path(os.environ[ENV_MODEL]), f"${ENV_MODEL}"
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, "shipped model"
    from recipe_repl.export.random_model import build_random_lstm

    words = ["", "[UNK]"] + [f"w{i}" for i in range(9998)]
    path = Path(tempfile.mkdtemp()) / "lecture-size.onnx"
    build_random_lstm(path, words, embedding_dim=100, units=128, scale=0.1)
    return path, "random weights, lecture size (vocab 10000, emb 100, units 128)"


def best_of(runs: int, fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """The fastest of several timed runs, in seconds of `clock` (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(runs):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def verdict(ratio: float, target: float, higher_is_better: bool = True) -> str:
    """'(target >= 3x: met)' and the like."""
    ok = ratio >= target if higher_is_better else ratio <= target
    return f"(target {'>=' if higher_is_better else '<='} {target:g}x: {'met' if ok else 'not met'})"
