"""The import contracts in pyproject.toml cover every runtime module (a new module cannot slip past them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_runtime_module_is_forbidden_to_import_training_and_tensorflow() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    [forbidden] = [c for c in contracts if "tensorflow" in c.get("forbidden_modules", [])]
    listed = set(forbidden["source_modules"])
    modules = {f"recipe_repl.{p.stem}" for p in (REPO / "recipe_repl").glob("*.py") if p.stem != "__init__"}
    assert "recipe_repl.builtins" in listed  # the package, with every built-in in it
    assert sorted(modules - listed) == []
    assert {"recipe_repl.train", "recipe_repl.export", "tensorflow", "keras", "tf2onnx"} <= set(
        forbidden["forbidden_modules"])
