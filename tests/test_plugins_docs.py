"""docs/plugins.md cannot drift: its hook reference must match hookspecs.py, and its tutorial must
build a plugin that installs and works."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from recipe_repl.plugin import hookspecs
from recipe_repl.plugin.manager import HOOK_NAMES
from tests.conftest import REPO
from tests.helpers import pip_install_target, recipe_repl, user_env

DOC = REPO / "docs" / "plugins.md"
HEADING_RE = re.compile(r"^### `(\w+)\(([^)]*)\)`\s*$", re.MULTILINE)
FENCE_RE = re.compile(r"^```(\w+) (\S+)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def _words(text: str) -> str:
    return " ".join(text.split())


def reference_sections() -> dict[str, tuple[list[str], str]]:
    """`### `hook(args)`` headings of the hook reference → (argument names, the section's text)."""
    text = DOC.read_text(encoding="utf-8")
    reference = text.split("\n## Hook reference\n", 1)[1]
    reference = re.split(r"^## ", reference, flags=re.MULTILINE)[0]
    matches = list(HEADING_RE.finditer(reference))
    sections = {}
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        body = reference[m.end(): nxt.start() if nxt else len(reference)]
        quoted = "\n".join(line[1:] for line in body.splitlines() if line.startswith(">"))
        args = [a.strip() for a in m.group(2).split(",") if a.strip()]
        sections[m.group(1)] = (args, quoted)
    return sections


def test_every_hook_is_documented_with_its_signature_and_docstring() -> None:
    sections = reference_sections()
    assert sorted(sections) == HOOK_NAMES, "docs/plugins.md documents other hooks than hookspecs.py declares"
    for name in HOOK_NAMES:
        spec = getattr(hookspecs, name)
        args, quoted = sections[name]
        assert args == list(inspect.signature(spec).parameters), f"{name}: signature differs from hookspecs.py"
        assert _words(quoted) == _words(inspect.getdoc(spec) or ""), f"{name}: docstring differs from hookspecs.py"


def tutorial_files() -> dict[str, str]:
    """Code blocks whose fence names a file (```python recipe_repl_tally.py)."""
    return {path: body for _, path, body in FENCE_RE.findall(DOC.read_text(encoding="utf-8"))}


def test_tutorial_plugin_installs_and_works(tmp_path: Path, random_model: Path) -> None:
    files = tutorial_files()
    assert set(files) == {"pyproject.toml", "recipe_repl_tally.py", "test_recipe_repl_tally.py"}
    project = tmp_path / "recipe-repl-tally"
    project.mkdir()
    for name, body in files.items():
        body = body.replace('Path("model.onnx")', f"Path({str(random_model)!r})")
        (project / name).write_text(textwrap.dedent(body), encoding="utf-8")
    pip_install_target([project], tmp_path / "site")
    env = user_env(tmp_path / "site", tmp_path)

    listed = {i["name"]: i for i in json.loads(recipe_repl(["plugins", "--json"], env).stdout)}
    assert listed["tally"]["version"] == "0.1.0"
    assert listed["tally"]["commands"] == ["tally"] and listed["tally"]["processors"] == ["stop-bias"]

    script = ":tally\n:use stop-bias 3\nrecipe for roast chicken\nrecipe for soup\n:tally\n:use stop-bias x\n:tally all\n"
    done = recipe_repl(["--model", str(random_model), "--seed", "1", "--json"], env, script)
    samples = [json.loads(line) for line in done.stdout.splitlines()]
    words = sum(len(s["tokens"]) for s in samples)
    err = done.stderr.splitlines()
    assert "line 4: warning: 'soup' is not in the vocabulary: the model reads [UNK]" in err  # the random model's
    err = [line for line in err if "is not in the vocabulary" not in line]
    assert err[:2] == ["line 1: no samples yet", "line 2: using stop-bias 3"]
    assert err[2].startswith("line 5: ") and err[2].endswith(f"; {words} words in all")
    assert all(f"{s['stop_reason']}: " in err[2] for s in samples)
    assert err[3].startswith("line 6: error: usage: :use stop-bias B")
    assert err[4] == ("line 7: error: no 'all': only reset — usage: :tally [reset], e.g. :tally reset "
                      "(see :help tally)")
    assert len(err) == 5

    # the tutorial's own test passes against the installed plugin
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(project),
                             str(project / "test_recipe_repl_tally.py")], capture_output=True, text=True, env=env,
                            cwd=project, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr
