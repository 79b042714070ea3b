"""The import contracts in pyproject.toml cover every part of the runtime (a new one cannot slip past them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def runtime_parts() -> set[str]:
    """Every module and subpackage in recipe_repl/ (train, export and models are mapped from their own folders)."""
    folder = REPO / "recipe_repl"
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return modules | packages


def test_every_runtime_part_is_forbidden_to_import_training_and_tensorflow() -> None:
    [forbidden] = [c for c in CONTRACTS if "tensorflow" in c.get("forbidden_modules", [])]
    listed = {m.removeprefix("recipe_repl.") for m in forbidden["source_modules"]}
    assert sorted(runtime_parts() - listed) == []
    assert {"recipe_repl.train", "recipe_repl.export", "tensorflow", "keras", "tf2onnx"} <= set(
        forbidden["forbidden_modules"])


def test_the_layers_contract_is_designs_layers_and_names_every_part() -> None:
    [layers] = [c for c in CONTRACTS if c["type"] == "layers"]
    named = [name.strip() for layer in layers["layers"] for name in layer.replace("|", ":").split(":")]
    order = [name for name in named if name not in ("train", "export", "__main__", "models")]
    assert order == ["frontends", "builtins", "session", "plugin", "generate", "views", "model", "base"]
    assert layers["exhaustive"] is True
    assert sorted(runtime_parts() | {"train", "export", "models"}) == sorted(named)


def test_built_in_command_modules_are_independent() -> None:
    assert any(c["type"] == "independence" and c["modules"] == ["recipe_repl.builtins.*"] for c in CONTRACTS)
