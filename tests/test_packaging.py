"""The package-dir mapping: `train/`, `export/`, `models/` install as `recipe_repl.*` subpackages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_regular_install_maps_subpackages(tmp_path: Path) -> None:
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    pkg = target / "recipe_repl"
    assert (pkg / "train" / "__init__.py").is_file()
    assert (pkg / "export" / "__init__.py").is_file()
    assert (pkg / "models" / "__init__.py").is_file()
    # nothing called train/ or export/ lands at the top of site-packages
    assert not (target / "train").exists() and not (target / "export").exists()
    code = "import recipe_repl.train, recipe_repl.export, recipe_repl.models as m; print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(target))
    assert (pkg / "models" / "recipes.onnx").is_file() and (pkg / "models" / "MODEL_CARD.md").is_file()
    # the bundled Wikibooks corpus and its licence and attribution travel as package data
    assert (pkg / "train" / "data" / "wikibooks-en.json.xz").is_file()
    assert (pkg / "train" / "data" / "WIKIBOOKS.md").is_file()


def test_editable_install_resolves_subpackages_to_the_source_tree() -> None:
    code = "import recipe_repl.train as t, recipe_repl.export as e; print(t.__file__); print(e.__file__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    train_file, export_file = out.stdout.split()
    assert Path(train_file) == REPO / "train" / "__init__.py"
    assert Path(export_file) == REPO / "export" / "__init__.py"
