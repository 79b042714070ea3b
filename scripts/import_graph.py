"""The package-level import graph of `recipe_repl`: how many parts, edges and layers it has.

A part is a child of `recipe_repl` (a subpackage, a top-level module, `train`, `export`, `models`);
an edge is "some module of part A imports some module of part B"; the layer count is the longest
chain of such edges. The package is laid out as installed first (scripts/lint_imports.py), so
`train` and `export` are seen. Prints one line, and any pair of parts that import each other.

    python scripts/import_graph.py [REPO]
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from functools import cache
from pathlib import Path


def part(module: str) -> str | None:
    """`recipe_repl.generate.loop` → `generate`; the root package itself → None."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[0] == "recipe_repl" else None


def figures(repo: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The parts and the edges between them of the checkout at `repo`."""
    import grimp

    spec = importlib.util.spec_from_file_location("lint_imports", repo / "scripts" / "lint_imports.py")
    assert spec and spec.loader
    lint_imports = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lint_imports)
    lint_imports.REPO = repo
    with tempfile.TemporaryDirectory(prefix="recipe-repl-graph-") as tmp:
        lint_imports.lay_out(repo / "pyproject.toml", Path(tmp))
        sys.path.insert(0, tmp)
        graph = grimp.build_graph("recipe_repl", cache_dir=None)
        sys.path.remove(tmp)
    parts = {p for m in graph.modules if (p := part(m))}
    edges = {(a, b) for m in graph.modules if (a := part(m))
             for imported in graph.find_modules_directly_imported_by(m) if (b := part(imported)) and b != a}
    return parts, edges


def layers(parts: set[str], edges: set[tuple[str, str]]) -> int:
    """The longest chain of imports, in parts (a graph without cycles)."""
    @cache
    def depth(node: str) -> int:
        return 1 + max((depth(b) for a, b in edges if a == node), default=0)

    return max(depth(p) for p in parts)


def main(argv: list[str]) -> int:
    """Print the figures of the checkout named (default: this one)."""
    repo = Path(argv[0] if argv else Path(__file__).resolve().parents[1]).resolve()
    parts, edges = figures(repo)
    mutual = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    if mutual:
        print(f"parts importing each other: {mutual}")
        return 1
    print(f"{len(parts)} parts, {len(edges)} edges, {layers(parts, edges)} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
