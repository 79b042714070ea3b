"""Run `mypy --strict` on the whole package — runtime, train and export — laid out as it is installed.

`recipe_repl.train` and `recipe_repl.export` are mapped from the top-level folders train/ and export/
(setuptools `package-dir`), which mypy cannot follow, so the files are copied into a temporary tree
(as `scripts/lint_imports.py` does) and mypy runs there with this checkout's settings; the paths in
its report are mapped back to the checkout's own. Exit status: mypy's.

    python scripts/typecheck.py [mypy options]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from lint_imports import REPO, lay_out


def main(argv: list[str]) -> int:
    """Lay the package out, run mypy --strict on it, print its report with the checkout's paths."""
    pyproject = REPO / "pyproject.toml"
    mapping: dict[str, str] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory(prefix="recipe-repl-types-") as tmp:
        lay_out(pyproject, Path(tmp))
        done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--config-file", str(pyproject),
                               "--cache-dir", str(REPO / ".mypy_cache"), "-p", "recipe_repl", *argv],
                              cwd=tmp, capture_output=True, text=True)
    # longest package first, so recipe_repl/train/… is not taken for recipe_repl/…
    prefixes = sorted(((pkg.replace(".", "/") + "/", folder.rstrip("/") + "/") for pkg, folder in mapping.items()),
                      key=lambda p: -len(p[0]))
    for line in (done.stdout + done.stderr).splitlines():
        for installed, source in prefixes:
            if line.startswith(installed):
                line = source + line[len(installed):] if source != "./" else line[len(installed):]
                break
        print(line)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
