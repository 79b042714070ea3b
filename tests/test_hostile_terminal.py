"""Issue 23 §5: what reaches the terminal and the files: a plugin's print(), the REPL's input line, presets saved
into the config, and files that are symbolic links."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output
from rich.console import Console

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.repl import ReplFrontend, run_repl
from recipe_repl.session.session import ModelSpec, Session
from tests.hostile import REPO, raw_controls, run

LOUD = "'\\x1b]0;pwned\\x07 {} \\u202e'"  # what every piece of plugin code prints


PRINTING = {
    "import": "print({p})\n",
    "command": "@hookimpl\ndef register_commands(register):\n"
               "    register('loud', lambda session, args: print({p}))\n",
    "processor": "@hookimpl\ndef register_processors(register):\n"
                 "    def proc(x, ctx):\n        print({p}, end='')\n        return x\n"
                 "    register('loud', lambda s, a, v: proc)\n",
    "listener": "@hookimpl\ndef on_token(word):\n    print({p})\n",
    "sample end": "@hookimpl\ndef on_sample_end(sample):\n    sys.stdout.write({p} + '\\n')\n",
    "feature": "@hookimpl\ndef register_cell_features(register):\n"
               "    register('loud', lambda words: print({p}) or [float(i % 2) for i in range(len(words))])\n",
    "loader": "@hookimpl\ndef register_model_loaders(register):\n"
              "    register('loud', lambda p: print({p}) or False, lambda p, provider, threads: None)\n",
}


@pytest.mark.parametrize("where", list(PRINTING))
def test_a_plugins_print_never_reaches_stdout(tmp_path: Path, random_model: Path, where: str) -> None:
    plugin = tmp_path / "loud.py"
    plugin.write_text("import sys\nfrom recipe_repl.plugin.hookspecs import hookimpl\n"
                      + PRINTING[where].format(p=LOUD.format(where)))
    stdin = b":loud\n:use loud\nrecipe for roast\n:cells find loud\n:model " + str(random_model).encode() + b"\n"
    for args in (["--json"], []):
        code, out, err = run(["--plugin", str(plugin), "--model", str(random_model), "--max-tokens", "3",
                              "--seed", "1", *args], stdin, plugins=True)
        assert not raw_controls(out) and not raw_controls(err), (out, err)
        lines = out.decode().splitlines()
        assert len(lines) == 1, out  # the one sample: nothing the plugin printed
        if args:
            assert json.loads(lines[0])["prompt"] == "recipe for roast"
        assert f"\\x1b]0;pwned\\x07 {where} \\u202e" in err.decode(), err  # on stderr, escaped


def test_generate_json_stays_json_lines_with_a_printing_listener(tmp_path: Path, random_model: Path) -> None:
    plugin = tmp_path / "loud.py"
    plugin.write_text("from recipe_repl.plugin.hookspecs import hookimpl\n"
                      "@hookimpl\ndef on_token(word):\n    print('{\"not\": \"a sample\"}', word, end='')\n")
    code, out, err = run(["--plugin", str(plugin), "generate", "recipe for", "--model", str(random_model), "--n",
                          "3", "--json", "--max-tokens", "5", "--seed", "2"], plugins=True)
    assert code == 0
    assert [json.loads(line)["sample"] for line in out.decode().splitlines()] == [0, 1, 2]


# --- the REPL's input line -----------------------------------------------------------------------------------


def rendered_repl(model: Path, plugins, typed: str) -> str:
    """What a real VT100 terminal would receive while `typed` is typed into the REPL (prompt and line drawn
    by prompt-toolkit), decoded."""
    screen = io.StringIO()
    output = Vt100_Output(screen, lambda: Size(rows=24, columns=100), term="xterm")
    console = Console(file=io.StringIO(), width=100, color_system=None)

    def make(frontend: ReplFrontend) -> Session:
        return Session(plugins, frontend, ModelSpec(model), Settings(seed=1, max_tokens=3))

    with create_pipe_input() as inp:
        inp.send_text(typed)
        run_repl(make, console=console, input=inp, output=output, history=InMemoryHistory())
    return screen.getvalue()


@pytest.mark.parametrize("pasted", ["\u202e", "\u2066", "\u200f", "\x1b[31m", "\x85"])
def test_the_input_line_shows_control_and_bidi_characters_escaped(random_model: Path, plugins, pasted: str) -> None:
    paste = f"\x1b[200~recipe {pasted}gnihton\x1b[201~"  # a terminal's bracketed paste: the text arrives as is
    drawn = rendered_repl(random_model, plugins, f"{paste}\r\x04")
    shown = drawn.replace("\x1b", "")  # the terminal's own escape sequences (colours, cursor) are prompt-toolkit's
    assert not [c for c in raw_controls(shown) if c not in "\r\n"], repr(drawn[-400:])
    from recipe_repl.base.sanitize import escape_char

    assert escape_char(pasted[0]) in drawn


def test_the_escape_processor_keeps_the_cursor_in_place() -> None:
    from prompt_toolkit.document import Document
    from prompt_toolkit.layout.processors import TransformationInput

    from recipe_repl.frontends.completion import EscapeUnsafe

    line = "ab\u202ecd"
    ti = TransformationInput(buffer_control=None, document=Document(line), lineno=0,  # type: ignore[arg-type]
                             source_to_display=lambda i: i, fragments=[("", line)], width=80, height=1)
    t = EscapeUnsafe().apply_transformation(ti)
    assert "".join(text for _, text, *_ in t.fragments) == "ab\\u202ecd"
    assert [t.source_to_display(i) for i in range(6)] == [0, 1, 2, 8, 9, 10]
    assert [t.display_to_source(d) for d in (0, 2, 5, 8, 9)] == [0, 2, 2, 3, 4]


# --- presets and links ----------------------------------------------------------------------------------------


def test_preset_save_writes_no_raw_control_or_bidi_character(random_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("# mine\n")
    stop = "step \u202e3\x85 \u2066x\x9b \"q\" \\ end"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_CONFIG": str(config), "RECIPE_REPL_NO_PLUGINS": "1"}
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--model", str(random_model)],
                       input=f":stop {stop}\n:preset save odd\n:preset save bad\u202ename\n".encode(),
                       capture_output=True, env=env, timeout=60)
    err = r.stderr.decode()
    assert "preset 'odd' saved" in err and "cannot hold control, bidi" in err, err
    text = config.read_text(encoding="utf-8")
    assert not raw_controls(text), repr(text)
    assert "\\u202e" in text and "\\u0085" in text
    data = tomllib.loads(text)
    assert data["presets"]["odd"]["stop"] == stop and "bad\u202ename" not in data["presets"]
    assert Settings.from_mapping(data["presets"]["odd"]).stop == stop


def test_a_linked_config_and_save_target_are_written_through_the_link(random_model: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real_config = dotfiles / "recipe-repl.toml"
    real_config.write_text("# kept in my dotfiles\n")
    config = tmp_path / "config.toml"
    config.symlink_to(real_config)
    real_save = dotfiles / "session.md"
    real_save.write_text("old")
    save = tmp_path / "session.md"
    save.symlink_to(real_save)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_CONFIG": str(config), "RECIPE_REPL_NO_PLUGINS": "1"}
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--model", str(random_model), "--max-tokens", "3"],
                       input=f":temp 0.3\n:preset save mine\nrecipe for roast\n:save {save}\n".encode(),
                       capture_output=True, env=env, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert config.is_symlink() and save.is_symlink()  # the links stay links
    assert tomllib.loads(real_config.read_text())["presets"]["mine"]["temperature"] == 0.3
    assert real_config.read_text().startswith("# kept in my dotfiles")
    assert "## recipe for roast" in real_save.read_text()
    assert f"through the link, to {real_config}" in err and f"through the link, to {real_save}" in err
    assert sorted(p.name for p in dotfiles.iterdir()) == ["recipe-repl.toml", "session.md"]  # no temp or lock left
