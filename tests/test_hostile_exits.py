"""Issue 23 §4: exit paths. Plugin code that ends the process, built-ins failing on bad input, engines from
plugin loaders, the CLI's last resort, validation at the edge, a closed pipe, config values of the wrong type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import REPO, run

ENDINGS = ["SystemExit(7)", "SystemExit('bye')", "GeneratorExit()", "type('Odd', (BaseException,), {})('odd')"]


def plugin_file(tmp_path: Path, body: str, name: str = "ender") -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text("import sys, numpy as np\nfrom recipe_repl.plugin.hookspecs import hookimpl\n" + body)
    return path


# Each place plugin code runs, raising `{e}` there; stdin for batch mode uses it, then goes on.
PLACES = {
    "command": ("@hookimpl\ndef register_commands(register):\n"
                "    def boom(session, args):\n        raise {e}\n    register('boom', boom)\n",
                b":boom\nrecipe for roast\n", "boom"),
    "processor factory": ("@hookimpl\ndef register_processors(register):\n"
                          "    def factory(settings, args, vocab):\n        raise {e}\n"
                          "    register('boom', factory)\n", b":use boom\nrecipe for roast\n", "boom"),
    "processor": ("@hookimpl\ndef register_processors(register):\n"
                  "    def proc(x, ctx):\n        raise {e}\n"
                  "    register('boom', lambda s, a, v: proc)\n", b":use boom\nrecipe for roast\n", "boom"),
    "feature": ("@hookimpl\ndef register_cell_features(register):\n"
                "    def feat(words):\n        raise {e}\n    register('boom', feat)\n",
                b"recipe for roast\n:cells find boom\nrecipe for roast\n", "boom"),
    "listener": ("@hookimpl\ndef on_token(word):\n    raise {e}\n", b"recipe for roast\nrecipe for roast\n", "on_token"),
    "loader": ("@hookimpl\ndef register_model_loaders(register):\n"
               "    def load(path, provider, threads):\n        raise {e}\n"
               "    register('boom', lambda p: p.suffix == '.boom', load)\n",
               b":model x.boom\nrecipe for roast\n", "boom"),
}


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("ending", ENDINGS)
def test_plugin_code_ending_the_process_is_one_line_and_the_session_goes_on(tmp_path: Path, random_model: Path,
                                                                           place: str, ending: str) -> None:
    body, stdin, what = PLACES[place]
    path = plugin_file(tmp_path, body.format(e=ending))
    if place == "loader":
        (tmp_path / "x.boom").write_bytes(b"")
        stdin = stdin.replace(b"x.boom", str(tmp_path / "x.boom").encode())
    code, out, err = run(["--plugin", str(path), "--model", str(random_model), "--max-tokens", "4", "--seed", "1"],
                         stdin, plugins=True)
    text = err.decode()
    assert "Traceback" not in text, text
    assert code in (0, 1), (code, text)  # never 7, never the process ended by the plugin
    assert str(path) in text and what in text, text
    assert out.decode().splitlines()[-1].startswith("Recipe for roast"), (out, text)  # the input went on


def test_a_plugin_command_ending_the_process_in_the_repl(tmp_path: Path, random_model: Path) -> None:
    from recipe_repl.plugin.manager import Plugins
    from tests.test_repl import lines, run_script

    path = plugin_file(tmp_path, PLACES["command"][0].format(e="SystemExit(3)"))
    run_ = run_script(random_model, Plugins(load_third_party=True, modules=[str(path)]),
                      lines(":boom", ":temp 0.5"))
    out = " ".join(run_.out.split())
    assert run_.status == 0 and ":boom failed" in out and "SystemExit: 3" in out
    assert "temperature = 0.5" in out  # the session went on


# --- built-ins on bad input: their own line ----------------------------------------------------------------------


@pytest.mark.parametrize("returns", ["42", "object()", "type('E', (), {'vocab': 1, 'info': 2})()",
                                     "broken_engine()", "wrong_shape()"])
def test_an_engine_from_a_plugin_loader_is_checked_like_the_built_in_one(tmp_path: Path, random_model: Path,
                                                                         returns: str) -> None:
    path = plugin_file(tmp_path, f"""
from pathlib import Path
from recipe_repl.model.engine import OnnxEngine

def broken_engine():
    e = OnnxEngine(Path({str(random_model)!r}))
    e.forward = lambda tokens, state: 1 / 0
    return e

def wrong_shape():
    e = OnnxEngine(Path({str(random_model)!r}))
    real = e.forward
    e.forward = lambda tokens, state: (real(tokens, state)[0][..., :3], real(tokens, state)[1])
    return e

@hookimpl
def register_model_loaders(register):
    register('odd', lambda p: p.suffix == '.odd', lambda p, provider, threads: {returns})
""", "odd_loader")
    model = tmp_path / "m.odd"
    model.write_bytes(b"")
    for args, stdin in ((["generate", "recipe", "--model", str(model)], b""),
                        (["--model", str(random_model)], f":model {model}\nrecipe for roast\n".encode())):
        code, out, err = run(["--plugin", str(path), *args], stdin, plugins=True)
        text = err.decode()
        assert "Traceback" not in text and "AttributeError" not in text and "failed (builtin" not in text, text
        assert f"plugin {path}: loader odd" in text, text
        assert code in (1, 2)


def test_presets_as_an_inline_table_is_its_own_line(tmp_path: Path, random_model: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('presets = { gentle = { temperature = 0.2 } }\n')
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--model", str(random_model)],
                       input=b":preset gentle\n:preset save bold\n", capture_output=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_CONFIG": str(config)})
    err = r.stderr.decode()
    assert "preset 'gentle' loaded" in err
    assert "presets is an inline table" in err and str(config) in err and "failed (builtin" not in err, err
    assert config.read_text() == 'presets = { gentle = { temperature = 0.2 } }\n'


# --- config values of the wrong type -----------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "key"), [
    ('threads = "x"', "threads"), ("threads = true", "threads"), ("model = 3", "model"),
    ("provider = [1]", "provider"), ("[settings]\ntop_k = 1.5", "top_k"), ('[settings]\nstop = ["a"]', "stop"),
    ("[settings]\ntemperature = true", "temperature"), ('[settings]\nprobs = 1', "probs"),
    ('[settings]\nuse = "boost"', "use"), ("[settings]\nmax_tokens = 2.0", "max_tokens"),
    ("[presets]\nbold = 3", "bold"),
])
def test_config_values_of_the_wrong_type_are_one_line_naming_file_and_key(tmp_path: Path, random_model: Path,
                                                                          line: str, key: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(line + "\n")
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--model", str(random_model)], input=b"recipe\n",
                       capture_output=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_CONFIG": str(config)})
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(config) in err and key in err, err


def test_a_preset_of_the_wrong_type_is_named_when_loaded(tmp_path: Path, random_model: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[presets.bold]\ntop_k = 1.5\n")
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--model", str(random_model)],
                       input=b":preset bold\n", capture_output=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_CONFIG": str(config)})
    err = r.stderr.decode()
    assert f"config {config}: [presets.bold]: setting 'top_k' must be a whole number, not 1.5" in err, err


# --- the CLI's edge and its last resort ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "says"), [
    (["train", "--seed", "-1"], "--seed must be between 0"),
    (["train", "--embedding-dim", "100000000"], "--embedding-dim must be between"),
    (["train", "--units", "60000", "--vocab-size", "20000"], "parameters"),
    (["train", "--learning-rate", "nan"], "--learning-rate must be a number"),
    (["train", "--val-split", "1.5"], "--val-split must be between"),
])
def test_train_settings_are_checked_before_tensorflow_starts(tmp_path: Path, args: list[str], says: str) -> None:
    probe = ("import sys, atexit\natexit.register(lambda: sys.stderr.write("
             "f'TF:{\"tensorflow\" in sys.modules}\\n'))\nfrom recipe_repl.frontends.cli import main\nmain()\n")
    r = subprocess.run([sys.executable, "-c", probe, *args, "--out", str(tmp_path / "run")], capture_output=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err and says in err, err
    assert "TF:False" in err
    assert not (tmp_path / "run").exists()


def test_export_of_a_run_whose_config_is_wrong_is_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"units": "many"}')
    (run_dir / "vocab.json").write_text('{"words": ["", "[UNK]", "a"], "lowercase": "ascii"}')
    (run_dir / "checkpoint.weights.h5").write_bytes(b"")
    code, out, err = run(["export", str(run_dir), "--out", str(tmp_path / "m.onnx")])
    text = err.decode()
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert "config.json" in text and "units must be a whole number, not 'many'" in text
    (run_dir / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    code, out, err = run(["export", str(run_dir), "--out", str(tmp_path / "m.onnx")])
    assert code == 2 and "nested too deeply" in err.decode()


def test_the_last_resort_is_one_line_and_a_report_on_disk(tmp_path: Path) -> None:
    plugin = tmp_path / "buggy.py"
    plugin.write_text(
        "import click\nfrom recipe_repl.plugin.hookspecs import hookimpl\n"
        "@click.command('buggy')\ndef buggy():\n    {}['missing']\n"
        "@hookimpl\ndef register_cli_commands(cli):\n    cli.add_command(buggy)\n"
    )
    state = tmp_path / "state"
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--plugin", str(plugin), "buggy"], capture_output=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(state)})
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "internal error (KeyError: 'missing')" in err
    [report] = (state / "recipe-repl").glob("crash-*.txt")
    assert f"the full report is in {report}" in err
    text = report.read_text()
    assert "Traceback" in text and "KeyError" in text and "buggy" in text
    assert report.stat().st_mode & 0o077 == 0  # private: it may hold paths


# --- a closed pipe: exit 0, quietly ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    "printf 'recipe for roast\\n%.0s' $(seq 400) | recipe-repl --model {m} --max-tokens 30",
    "printf 'recipe for roast\\n%.0s' $(seq 400) | recipe-repl --model {m} --max-tokens 30 --json",
    "recipe-repl generate 'recipe for' --model {m} --n 400 --max-tokens 30",
    "recipe-repl generate 'recipe for' --model {m} --n 400 --max-tokens 30 --json",
    "recipe-repl score {t} --model {m}",
    "recipe-repl data show text:{t} -n 3000",
])
def test_a_reader_that_leaves_early_ends_the_run_quietly_with_status_0(random_model: Path, tmp_path: Path,
                                                                        command: str) -> None:
    texts = tmp_path / "t.txt"
    texts.write_text("recipe for roast chicken | mix salt and pepper .\n" * 3000)
    shim = tmp_path / "recipe-repl"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m recipe_repl \"$@\"\n")
    shim.chmod(0o755)
    line = "set -o pipefail; " + command.format(m=random_model, t=texts) + " | head -1"
    r = subprocess.run(["bash", "-c", line], capture_output=True, timeout=180,
                       env={**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1",
                            "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1
    assert r.stderr.strip() == b"" or b"error" not in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr and b"Exception ignored" not in r.stderr
