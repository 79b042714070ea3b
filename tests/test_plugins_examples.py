"""The example plugins, installed for real (pip, entry points) and run through the `recipe-repl` command.

Both examples are pip-installed once, offline, into a temporary target; each test then runs
`recipe-repl` in a subprocess with that target on PYTHONPATH, so discovery goes through the
`recipe_repl` entry-point group exactly as after `pip install`.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from recipe_repl.base.settings import Settings
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import ModelSpec, Session
from tests.conftest import REPO
from tests.helpers import Recorder, pip_install_target, recipe_repl, run_lines, user_env

EXAMPLES = REPO / "examples" / "plugins"
EXAMPLE_NAMES = ("recipe-repl-ingredients", "recipe-repl-wordbias")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both example plugins installed into one folder (copied first: building writes into the source)."""
    base = tmp_path_factory.mktemp("examples")
    sources = []
    for name in EXAMPLE_NAMES:
        sources.append(base / name)
        shutil.copytree(EXAMPLES / name, base / name, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    pip_install_target(sources, base / "site")
    return base / "site"


@pytest.fixture()
def env(installed: Path, tmp_path: Path) -> dict[str, str]:
    """A user who installed both example plugins."""
    return user_env(installed, tmp_path)


def test_discovered_by_entry_point_and_listed(env: dict[str, str]) -> None:
    listed = recipe_repl(["plugins", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    infos = {i["name"]: i for i in json.loads(listed.stdout)}
    assert infos["ingredients"] == {
        "name": "ingredients", "version": "0.1.0", "source": "entry point", "commands": ["ingredients"],
        "processors": [], "loaders": [], "cli_commands": [], "hooks": ["register_commands"], "features": [],
    }
    assert infos["wordbias"]["version"] == "0.1.0"
    assert infos["wordbias"]["processors"] == ["banwords", "boost"]
    assert infos["wordbias"]["cli_commands"] == ["log"]
    assert {"on_prompt", "on_token", "on_sample_end"} <= set(infos["wordbias"]["hooks"])
    table = recipe_repl(["plugins"], env)
    assert table.returncode == 0
    for text in ("ingredients", "wordbias", "0.1.0", "entry point", ":ingredients", "banwords, boost", "recipe-repl log"):
        assert text in table.stdout


def test_no_plugins_switches_load_builtins_only(env: dict[str, str], random_model: Path) -> None:
    for args, extra in ((["--no-plugins"], {}), ([], {"RECIPE_REPL_NO_PLUGINS": "1"})):
        done = recipe_repl([*args, "plugins", "--json"], {**env, **extra})
        assert done.returncode == 0, done.stderr
        assert {i["source"] for i in json.loads(done.stdout)} == {"builtin"}
    batch = recipe_repl(["--no-plugins", "--model", str(random_model)], env, ":use banwords salt\n:ingredients\n")
    assert batch.returncode == 1
    assert "line 1: error: unknown processor 'banwords'" in batch.stderr
    assert "line 2: error: unknown command :ingredients" in batch.stderr


def _tokens(stdout: str) -> list[list[str]]:
    return [json.loads(line)["tokens"] for line in stdout.splitlines()]


def test_batch_banwords_and_boost_change_the_samples(env: dict[str, str], random_model: Path,
                                                     tmp_path: Path) -> None:
    script = ":n 8\nrecipe for\n:use banwords salt For\nrecipe for\n:use off banwords\n:use boost salt 3\nrecipe for\n"
    env = {**env, "RECIPE_REPL_LOG_DB": str(tmp_path / "log.db")}
    done = recipe_repl(["--model", str(random_model), "--seed", "3", "--max-tokens", "30", "--json"], env, script)
    assert done.returncode == 0, done.stderr
    rows = _tokens(done.stdout)
    assert len(rows) == 24
    plain, banned, boosted = rows[:8], rows[8:16], rows[16:]
    count = lambda rows, word: sum(r.count(word) for r in rows)  # noqa: E731
    assert count(plain, "salt") > 0 and count(plain, "for") > 0  # the test can see a difference
    assert count(banned, "salt") == 0 and count(banned, "for") == 0
    assert count(boosted, "salt") > 2 * count(plain, "salt")
    # every sample was logged with its settings, one row each
    with sqlite3.connect(tmp_path / "log.db") as db:
        logged = db.execute("SELECT continuation, settings_json, stop_reason, duration_ms FROM samples").fetchall()
    assert len(logged) == 24
    assert json.loads(logged[8][1])["use"] == [["banwords", ["salt", "For"]]]
    assert json.loads(logged[16][1])["use"] == [["boost", ["salt", "3"]]]
    assert all(stop in ("stop token", "max tokens") and ms is not None and ms >= 0 for _, _, stop, ms in logged)
    shown = recipe_repl(["log", "-n", "2", "--json"], env)
    entries = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [e["id"] for e in entries] == [23, 24]
    assert entries[-1]["settings"]["seed"] == 3 and entries[-1]["continuation"] == logged[-1][0]
    text = recipe_repl(["log", "-n", "1"], env)
    assert text.returncode == 0 and text.stdout.startswith("#24 ") and "use boost salt 3" in text.stdout


def test_config_file_use_setting(env: dict[str, str], random_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "config" / "recipe-repl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[settings]\nuse = [["banwords", ["salt", "pepper"]]]\nseed = 3\nn = 8\n')
    done = recipe_repl(["--model", str(random_model), "--json", "--max-tokens", "30"],
                       {**env, "RECIPE_REPL_LOG_DB": "off"}, "recipe for\n")
    assert done.returncode == 0, done.stderr
    rows = _tokens(done.stdout)
    assert len(rows) == 8 and not any("salt" in r or "pepper" in r for r in rows)
    assert not (tmp_path / "state" / "recipe-repl" / "log.db").exists()  # logging off


def test_batch_ingredients_command(env: dict[str, str], random_model: Path) -> None:
    script = ":ingredients\n:use boost chicken 50\n:max 4\nrecipe for roast\n:ingredients\n:ingredients prompt\n" \
             ":ingredients everything\n"
    done = recipe_repl(["--model", str(random_model), "--seed", "1"], env, script)
    assert done.stdout == "Recipe for roast chicken chicken chicken chicken\n"
    assert done.stderr.splitlines() == [
        "line 1: error: no sample yet: type a prompt first",
        "line 2: using boost chicken 50",
        "line 3: max tokens = 4",
        "line 5: chicken (4)",
        "line 6: chicken (4)",  # "roast" is a verb, not an ingredient
        "line 7: error: usage: :ingredients [prompt]",
    ]
    assert done.returncode == 1  # bad lines were reported


def test_wordbias_errors_are_one_line(env: dict[str, str], random_model: Path) -> None:
    script = ":use banwords saffron\n:use banwords\n:use boost 2\n:use boost salt inf\n:use boost 1=2 salt\n"
    done = recipe_repl(["--model", str(random_model)], {**env, "RECIPE_REPL_LOG_DB": "off"}, script)
    assert done.stderr.splitlines() == [
        "line 1: error: 'saffron' is not in the model's vocabulary",
        "line 2: error: usage: :use banwords WORD [WORD ...]",
        "line 3: error: bias 2 has no word before it (write WORD 2, or WORD=2)",
        "line 4: error: a bias must be a number between -100 and 100, not inf",
        "line 5: using boost 1=2 salt",
    ]


def test_plugin_file_option_and_env(env: dict[str, str], random_model: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "shout.py"
    plugin.write_text(
        "from recipe_repl.plugin.hookspecs import hookimpl\n__version__ = '2.5'\n"
        "@hookimpl\ndef register_commands(register):\n"
        "    register('shout', lambda session, args: session.say(args.upper()))\n"
    )
    listed = recipe_repl(["--plugin", str(plugin), "plugins", "--json"], env)
    info = {i["name"]: i for i in json.loads(listed.stdout)}[str(plugin)]
    assert info["version"] == "2.5" and info["commands"] == ["shout"] and info["source"] == "module"
    done = recipe_repl(["--model", str(random_model)], {**env, "RECIPE_REPL_PLUGINS": str(plugin)}, ":shout hi\n")
    assert done.returncode == 0 and done.stderr == "line 1: HI\n"
    broken = recipe_repl(["--plugin", str(tmp_path / "nope.py"), "plugins"], env)
    assert broken.returncode == 0
    assert broken.stderr.splitlines()[0] == f"warning: plugin {tmp_path / 'nope.py'} failed to import: " \
                                            f"UserError: no such file {tmp_path / 'nope.py'}"


def test_examples_in_a_session_as_the_repl_uses_them(installed: Path, random_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("RECIPE_REPL_LOG_DB", str(tmp_path / "session.db"))
    plugins = Plugins(load_third_party=True)
    assert {"ingredients", "wordbias"} <= set(plugins.infos) and plugins.problems == []
    frontend = Recorder()
    session = Session(plugins, frontend, ModelSpec(random_model, "cpu"), Settings(seed=5, max_tokens=12))
    run_lines(session, frontend, ":use banwords salt", ":use boost chicken 20", ":n 3", "recipe for",
              ":ingredients", ":use list")
    assert frontend.text("error") == ""
    assert len(frontend.samples) == 3 and not any("salt" in s.words for s in frontend.samples)
    lines = [t for k, t in frontend.lines if t.startswith("sample ")]
    assert len(lines) == 3 and all(line.endswith(": chicken (12)") for line in lines)
    assert "processors in use: banwords salt, boost chicken 20" in frontend.text()
    from recipe_repl_wordbias import log

    rows = log.last_entries(tmp_path / "session.db", 10)
    assert [r["continuation"] for r in rows] == [s.continuation for s in frontend.samples]
    log.close_all()


def test_examples_in_the_real_repl(installed: Path, random_model: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The REPL itself (prompt-toolkit pipe input, rich on a StringIO), with both plugins installed."""
    import io

    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from recipe_repl.frontends.completion import ReplCompleter
    from recipe_repl.frontends.repl import ReplFrontend, run_repl

    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("RECIPE_REPL_LOG_DB", "off")
    plugins = Plugins(load_third_party=True)
    buf = io.StringIO()
    made: list[Session] = []

    def make_session(frontend: ReplFrontend) -> Session:
        made.append(Session(plugins, frontend, ModelSpec(random_model, "cpu"), Settings(seed=1, max_tokens=6)))
        return made[0]

    typed = [":use boost chicken 40", "recipe for roast", ":ingredients", ":help ingredients", ":use banwords nope"]
    with create_pipe_input() as inp:
        inp.send_text("".join(t + "\r" for t in typed) + "\x04")
        status = run_repl(make_session, console=Console(file=buf, width=100, color_system=None, highlight=False),
                          input=inp, output=DummyOutput(), history=InMemoryHistory())
    out = buf.getvalue()
    assert status == 0
    assert "using boost chicken 40" in out
    assert "roast chicken chicken chicken" in out.lower()
    assert "chicken (6)" in out
    assert ":ingredients [prompt] — list the ingredients the last sample mentions" in out
    assert "from plugin ingredients" in out
    assert "'nope' is not in the model's vocabulary" in out

    def complete(text: str) -> list[str]:
        completer = ReplCompleter(lambda: made[0])
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]

    assert complete(":ingr") == [":ingredients"]
    assert complete(":ingredients p") == ["prompt"]
    assert {"banwords", "boost"} <= set(complete(":use b"))
