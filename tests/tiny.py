"""Tiny real models for tests: trained in seconds on the 29-record Epicurious sample, then exported.

`train_tiny_run`, `export_tiny_onnx` and `export_tiny_stateless_onnx` do the work; the `cached_*`
helpers share one run per test session between modules (conftest fixtures can wrap either).
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path("data") / "epicurious-sample.json"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _shared_candidates() -> list[Path]:
    """Where the project's shared folder may be: $RECIPE_REPL_SHARED, beside this checkout, beside the
    main checkout of this `git worktree`, or beside the repository it was cloned from (a fresh
    `git clone` into a temporary folder)."""
    found = [Path(os.environ["RECIPE_REPL_SHARED"])] if os.environ.get("RECIPE_REPL_SHARED") else []
    found.append(REPO.parent / "shared")
    common = _git("rev-parse", "--path-format=absolute", "--git-common-dir")
    if common:  # a worktree's repository lives in its main checkout's .git
        found.append(Path(common).parent.parent / "shared")
    origin = _git("config", "--get", "remote.origin.url")
    if origin and Path(origin).is_dir():  # a local clone: its origin is a folder
        found.append(Path(origin).resolve().parent / "shared")
    return found


EPICURIOUS_SAMPLE = next((d / SAMPLE for d in _shared_candidates() if (d / SAMPLE).is_file()),
                         REPO.parent / "shared" / SAMPLE)

TINY = {"vocab_size": 300, "embedding_dim": 16, "units": 32, "seq_len": 40, "epochs": 2, "batch_size": 8,
        "seed": 7, "sample_every": 0}


def tiny_config(**overrides):
    from recipe_repl.train.config import TrainConfig

    return TrainConfig(**({"data": f"epicurious:{EPICURIOUS_SAMPLE}"} | TINY | overrides))


def train_tiny_run(run_dir: Path, **overrides) -> Path:
    """Train the tiny model into `run_dir` (quietly) and return the run folder."""
    from recipe_repl.train.loop import train

    train(tiny_config(**overrides), Path(run_dir), quiet=True, stream=io.StringIO())
    return Path(run_dir)


def export_tiny_onnx(run_dir: Path, out: Path, **kw) -> Path:
    """Export a run to the stateful ONNX format (parity-checked)."""
    from recipe_repl.export.exporter import export_run

    export_run(Path(run_dir), Path(out), quiet=True, **kw)
    return Path(out)


def export_tiny_stateless_onnx(run_dir: Path, out: Path) -> Path:
    """Export a run the lecture's way: tokens → probabilities, no state (output_kind "probs")."""
    return export_tiny_onnx(run_dir, out, stateless=True)


_CACHE: dict[str, Path] = {}


def cached_tiny_run(tmp_path_factory) -> Path:
    if "run" not in _CACHE:
        _CACHE["run"] = train_tiny_run(tmp_path_factory.mktemp("tiny") / "run")
    return _CACHE["run"]


def cached_tiny_onnx(tmp_path_factory) -> Path:
    if "onnx" not in _CACHE:
        run = cached_tiny_run(tmp_path_factory)
        _CACHE["onnx"] = export_tiny_onnx(run, tmp_path_factory.mktemp("tiny_onnx") / "tiny.onnx")
    return _CACHE["onnx"]


def cached_tiny_stateless_onnx(tmp_path_factory) -> Path:
    if "stateless" not in _CACHE:
        run = cached_tiny_run(tmp_path_factory)
        _CACHE["stateless"] = export_tiny_stateless_onnx(run, tmp_path_factory.mktemp("tiny_probs") / "probs.onnx")
    return _CACHE["stateless"]
