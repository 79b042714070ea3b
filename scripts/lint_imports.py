"""Run `lint-imports` (the contracts in pyproject.toml) on the package laid out as it is installed.

`recipe_repl.train` and `recipe_repl.export` are mapped from the top-level folders train/ and export/
(setuptools `package-dir`); grimp, which builds import-linter's graph, walks a package's own folder
and would silently drop every import of those subpackages. So the Python files are copied into a
temporary tree that follows `[tool.setuptools.package-dir]`, and lint-imports runs there, with this
checkout's pyproject.toml. Exit status: lint-imports' own.

    python scripts/lint_imports.py [lint-imports options, e.g. --verbose]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python_files_only(folder: str, names: list[str]) -> list[str]:
    """The names `shutil.copytree` should skip: caches and everything but Python files and folders."""
    return [n for n in names if n == "__pycache__" or not (n.endswith(".py") or (Path(folder) / n).is_dir())]


def lay_out(pyproject: Path, target: Path) -> None:
    """Copy each package's .py files to where `package-dir` installs them (parents before children)."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping: dict[str, str] = config.get("package-dir", {})
    for package in sorted(mapping, key=lambda p: p.count(".")):
        source = REPO / mapping[package]
        destination = target.joinpath(*package.split("."))
        shutil.copytree(source, destination, ignore=python_files_only, dirs_exist_ok=True)


def main(argv: list[str]) -> int:
    """Lay the package out in a temporary folder and run lint-imports there."""
    pyproject = REPO / "pyproject.toml"
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.is_file():
        sys.stderr.write(f"error: {lint_imports} not found: install the dev extra (pip install -e '.[dev]')\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="recipe-repl-imports-") as tmp:
        lay_out(pyproject, Path(tmp))
        # lint-imports puts its working folder first on sys.path, so the copy is what it finds.
        done = subprocess.run([str(lint_imports), str(pyproject), "--no-cache", *argv], cwd=tmp)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
