"""Issue 14 §1: untrusted text (model words, input lines, paths, plugins' messages) never reaches a terminal raw.

Every mode runs as the real command line (a subprocess), and the raw bytes of stdout and stderr are
checked for control, DEL, C1 and bidi characters with a definition written here, independent of the
sanitizer under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.sanitize import clean, dumps
from tests.hostile import raw_controls

REPO = Path(__file__).resolve().parents[1]

HOSTILE = ["\x1b]0;pwned\x07", "\x1b[?1049h", "\x9b31m", "\u202egnihton"]
# A vocabulary made mostly of hostile words, so that random weights write them in a few tokens.
HOSTILE_WORDS = ["", "[UNK]", "recipe", "for", "roast", *HOSTILE]

def cli(args: list[str], stdin: bytes | str = b"", env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "recipe_repl", *args], input=data, capture_output=True,
                          env=full_env, timeout=timeout)


def assert_clean(r: subprocess.CompletedProcess[bytes]) -> None:
    assert not raw_controls(r.stdout), r.stdout
    assert not raw_controls(r.stderr), r.stderr
    assert b"Traceback" not in r.stderr


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_lstm(tmp_path_factory.mktemp("hostile") / "hostile.onnx", HOSTILE_WORDS, scale=2.0, seed=3)


# --- the sanitizer itself ------------------------------------------------------------------------


def test_clean_escapes_every_unsafe_character_and_keeps_the_rest() -> None:
    assert clean("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert clean("\x9b31m\x7f\x85") == "\\x9b31m\\x7f\\x85"
    assert clean("x\u202ey\u2066z\u200e\u200f\u061c\u2028\ufeff") == \
        "x\\u202ey\\u2066z\\u200e\\u200f\\u061c\\u2028\\ufeff"
    assert clean("lone \udcff surrogate") == "lone \\udcff surrogate"
    assert clean("tag \U000e0041") == "tag \\U000e0041"
    assert clean("crème brûlée, 1/2 cup · 温度 ⏹ [end]") == "crème brûlée, 1/2 cup · 温度 ⏹ [end]"
    assert clean("two\nlines\r") == "two\\x0alines\\x0d"
    assert clean("two\nlines\r", keep="\n") == "two\nlines\\x0d"
    for text in ("\x1b[31m", "\u202e", "a\tb"):
        assert clean(clean(text)) == clean(text)  # idempotent: escapes are printable


def test_dumps_escapes_c1_and_bidi_as_u_escapes_and_round_trips() -> None:
    data = {"w": HOSTILE + ["\x7f", "\U000e0041", "\udcff", "ok é"], "n": 1}
    text = dumps(data)
    assert not raw_controls(text)
    assert "\\u009b31m" in text and "\\u202e" in text and "\\u007f" in text and "\\udb40\\udc41" in text
    assert "ok é" in text  # ordinary non-ASCII text stays readable
    assert json.loads(text) == data
    indented = dumps(data, indent=2)
    assert "\n" in indented and json.loads(indented) == data and not raw_controls(indented)


# --- every mode on a hostile vocabulary ----------------------------------------------------------


def test_generate_text_escapes_hostile_words(hostile_model: Path) -> None:
    r = cli(["generate", "recipe for", "--model", str(hostile_model), "--seed", "1", "--max-tokens", "60",
             "-t", "2", "--n", "3"])
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    out = r.stdout.decode()
    assert "\\x1b]0;pwned\\x07" in out or "\\x1b[?1049h" in out or "\\x9b31m" in out, out
    assert len(out.splitlines()) == 3  # one line per sample: no word can break a line


def test_generate_json_escapes_c1_and_bidi(hostile_model: Path) -> None:
    r = cli(["generate", "recipe for", "--model", str(hostile_model), "--seed", "1", "--max-tokens", "60",
             "-t", "2", "--n", "3", "--json"])
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    words = {w for row in rows for w in row["tokens"]}
    assert words & set(HOSTILE), "the model did write hostile words"  # JSON keeps the real words
    assert "\\u009b31m" in r.stdout.decode() or "\\u202e" in r.stdout.decode()


@pytest.mark.parametrize("json_out", [False, True])
def test_batch_escapes_hostile_words(hostile_model: Path, json_out: bool) -> None:
    r = cli(["--model", str(hostile_model), "--seed", "2", "--max-tokens", "60", "-t", "2",
             *(["--json"] if json_out else [])], "recipe\nroast for\n" * 3)
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    assert len(r.stdout.decode().splitlines()) == 6


def test_loading_a_hostile_vocabulary_warns_once_and_works(hostile_model: Path) -> None:
    r = cli(["--model", str(hostile_model), "--seed", "2", "--max-tokens", "5"], "recipe\nroast\n")
    assert r.returncode == 0
    err = r.stderr.decode()
    assert err.count("4 words") == 1, err
    assert "shown escaped" in err


# --- errors echo untrusted input escaped ---------------------------------------------------------


def test_unknown_command_with_osc_in_batch_is_escaped(random_model: Path) -> None:
    r = cli(["--model", str(random_model), "--max-tokens", "3"], b":x\x1b]0;t\x07\nrecipe\n")
    assert r.returncode == 1
    assert_clean(r)
    assert "line 1: error: unknown command :x\\x1b]0;t\\x07" in r.stderr.decode()
    assert len(r.stdout.splitlines()) == 1  # the batch went on


def test_model_command_with_escapes_in_the_path(random_model: Path) -> None:
    r = cli(["--model", str(random_model), "--max-tokens", "3"], ":model /no/\x1b[?1049hx\x9b.onnx\nrecipe\n".encode())
    assert r.returncode == 1
    assert_clean(r)
    assert "\\x1b[?1049hx\\x9b.onnx" in r.stderr.decode()
    assert len(r.stdout.splitlines()) == 1


def test_help_with_escapes(random_model: Path) -> None:
    r = cli(["--model", str(random_model)], ":help \x1b]0;t\x07\u202e\n".encode())
    assert r.returncode == 1
    assert_clean(r)
    assert "\\x1b]0;t\\x07\\u202e" in r.stderr.decode()


@pytest.mark.parametrize("args", [
    ["--model", "/no/\x1b]0;t\x07.onnx"],
    ["generate", "x", "--model", "/no/\x1b]0;t\x07\u202e.onnx"],
    ["eval", "/no/\x1b]0;t\x07\x9b.onnx"],
    ["generate", "x", "--threads", "\x1b[?1049h"],  # click's own error echoes the value
    ["generate", "x", "--nope\x1b]0;t\x07"],
])
def test_errors_naming_a_path_or_value_are_escaped(args: list[str]) -> None:
    r = cli(args, b"recipe\n")
    assert r.returncode == 2
    assert_clean(r)
    err = r.stderr.decode()
    assert "\\x1b" in err and err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1, err


def test_plugin_messages_with_escapes(tmp_path: Path, random_model: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('\\x1b]0;pwned\\x07 \\u202e')\n")
    noisy = tmp_path / "noisy.py"
    noisy.write_text(
        "from recipe_repl.plugin.hookspecs import hookimpl\n"
        "def boom(session, args):\n"
        "    raise ValueError('\\x1b[?1049h' + args)\n"
        "@hookimpl\n"
        "def register_commands(register):\n"
        "    register('boom', boom, help='\\x9b31m help')\n"
    )
    r = cli(["--plugin", str(broken), "--plugin", str(noisy), "--model", str(random_model)],
            b":boom \x1b]0;x\x07\n:help boom\n:help\n", env={"RECIPE_REPL_NO_PLUGINS": "0"})
    assert_clean(r)
    err = r.stderr.decode()
    assert "failed to import: RuntimeError: \\x1b]0;pwned\\x07 \\u202e" in err
    assert "ValueError: \\x1b[?1049h\\x1b]0;x\\x07" in err
    assert "\\x9b31m help" in err


def test_plugins_listing_escapes_names(tmp_path: Path) -> None:
    odd = tmp_path / "odd\x1b]0;t\x07\x9b1m\u202e.py"
    odd.write_text("x = 1\n")
    for args in (["plugins"], ["plugins", "--json"]):
        r = cli(["--plugin", str(odd), *args], env={"RECIPE_REPL_NO_PLUGINS": "0", "COLUMNS": "500"})
        assert r.returncode == 0, r.stderr
        assert_clean(r)
        assert "\\x9b1m\\u202e" in r.stdout.decode() or "\\u009b1m\\u202e" in r.stdout.decode()
    data = json.loads(r.stdout)
    assert any(p["name"] == str(odd) for p in data)  # JSON escapes, and loads back to the real name


def test_save_markdown_and_json_escape_hostile_text(hostile_model: Path, tmp_path: Path) -> None:
    from recipe_repl.base.settings import Settings
    from recipe_repl.builtins.session_commands import _save
    from recipe_repl.plugin.manager import Plugins
    from recipe_repl.session.session import ModelSpec, Session
    from tests.helpers import Recorder

    session = Session(Plugins(load_third_party=False), Recorder(), ModelSpec(hostile_model),
                      Settings(seed=1, temperature=2, max_tokens=60))
    session.handle_line(":stop \x1b]0;x\x07")
    session.handle_line("recipe \u202e for")
    assert any(set(s.words) & set(HOSTILE) for s in session.last_samples)
    _save(session, str(tmp_path / "s.md"))
    _save(session, str(tmp_path / "s.json"))
    md = (tmp_path / "s.md").read_text(encoding="utf-8")
    assert not raw_controls(md) and "\\x1b]0;x\\x07" in md
    text = (tmp_path / "s.json").read_text(encoding="utf-8")
    assert not raw_controls(text)
    assert json.loads(text)["entries"][0]["text"] == ":stop \x1b]0;x\x07"  # the real text, escaped in JSON


def test_eval_report_escapes_its_path(tmp_path: Path, random_model: Path) -> None:
    from tests.tiny import EPICURIOUS_SAMPLE

    odd = tmp_path / "m\x1b]0;t\x07\u202e.onnx"
    odd.write_bytes(random_model.read_bytes())
    r = cli(["eval", str(odd), "--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--no-ngram", "--limit", "2"])
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    assert "m\\x1b]0;t\\x07\\u202e.onnx" in r.stdout.decode()


def test_a_plugin_subcommand_help_is_escaped(tmp_path: Path) -> None:
    plugin = tmp_path / "helpful.py"
    plugin.write_text(
        "import click\n"
        "from recipe_repl.plugin.hookspecs import hookimpl\n"
        "@click.command('evil')\n"
        "@click.option('--x', help='opt \\x1b]0;pwned\\x07')\n"
        "def evil(x):\n"
        "    '''Evil \\x9b31m help \\u202e.'''\n"
        "@hookimpl\n"
        "def register_cli_commands(cli):\n"
        "    cli.add_command(evil)\n"
    )
    for args in (["--help"], ["evil", "--help"]):
        r = cli(["--plugin", str(plugin), *args], env={"RECIPE_REPL_NO_PLUGINS": "0"})
        assert r.returncode == 0, r.stderr
        assert_clean(r)
        assert "Evil \\x9b31m help \\u202e" in r.stdout.decode()
