"""The plugin manager: discovery switches, clash rules, failure isolation, processors, loaders, tracing.

Plugins here are small `.py` files written into tmp_path and loaded as `--plugin FILE.py` would load
them; sessions run the real random-weight ONNX model, driven line by line as the REPL drives them.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import StopReason
from recipe_repl.plugin.manager import Plugins
from tests.conftest import WORDS
from tests.helpers import HEADER, make_plugins, make_session, run_lines, write_plugin

# --- discovery switches ---------------------------------------------------------------------------


def test_builtins_are_registered_through_the_hooks(plugins: Plugins) -> None:
    names = [i.name for i in plugins.listing()]
    assert names and all(n.startswith("builtin:") for n in names)
    assert {"quit", "help", "temp", "use"} <= set(plugins.commands.names())
    assert {"temperature", "top-k"} <= {s.name for s in plugins.processor_specs()}
    assert plugins.problems == []


def test_env_switches_restrict_third_party_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_plugin(tmp_path, "envplug", """
        @hookimpl
        def register_commands(register):
            register("hello", lambda session, args: session.say("hello"))
    """)
    monkeypatch.setenv("RECIPE_REPL_PLUGINS", str(path))
    assert "hello" in Plugins().commands.names()
    monkeypatch.setenv("RECIPE_REPL_NO_PLUGINS", "1")
    assert "hello" not in Plugins().commands.names()
    assert all(i.source == "builtin" for i in Plugins().listing())


def test_entry_point_that_fails_to_import_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    dist = site / "recipe_repl_broken-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: recipe-repl-broken\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[recipe_repl]\nbroken = recipe_repl_broken\n")
    (site / "recipe_repl_broken.py").write_text("import a_module_that_is_not_there\n")
    monkeypatch.syspath_prepend(str(site))
    plugins, reported = make_plugins()
    assert reported == ["plugin broken failed to import: ModuleNotFoundError: No module named "
                        "'a_module_that_is_not_there'"]
    assert "broken" not in plugins.infos and "quit" in plugins.commands.names()


def _dist(site: Path, dist: str, entry: str, module: str, body: str) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[recipe_repl]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(HEADER + textwrap.dedent(body))


def test_entry_point_name_clash_and_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """
        @hookimpl
        def register_commands(register):
            register("greet", lambda session, args: session.say("hi"))
    """
    _dist(tmp_path / "a", "greeter", "greet", "greeter_a", body)
    _dist(tmp_path / "b", "greeter_b", "greet", "greeter_b", body)
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "a"))  # the same package twice on sys.path: no complaint
    plugins, reported = make_plugins()
    assert reported == [] and plugins.infos["greet"].version == "1.0"
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    plugins, reported = make_plugins()
    assert len(reported) == 1 and reported[0].endswith("not loaded: the name is already taken")
    assert plugins.commands.get("greet") is not None


def test_entry_point_precheck(tmp_path: Path) -> None:
    """The cheap look that lets start-up skip importlib.metadata finds what the full scan would."""
    from recipe_repl.plugin.manager import may_have_entry_points

    _dist(tmp_path / "a", "greeter", "greet", "greeter_a", "")
    (tmp_path / "b" / "other-1.0.dist-info").mkdir(parents=True)
    (tmp_path / "b" / "other-1.0.dist-info" / "entry_points.txt").write_text("[console_scripts]\nx = y:z\n")
    (tmp_path / "c.zip").write_bytes(b"PK")
    assert may_have_entry_points("recipe_repl", [str(tmp_path / "a")])
    assert not may_have_entry_points("recipe_repl", [str(tmp_path / "b"), str(tmp_path / "missing")])
    assert may_have_entry_points("console_scripts", [str(tmp_path / "b")])
    assert may_have_entry_points("recipe_repl", [str(tmp_path / "c.zip")])  # unknown: the full scan decides


def test_plugin_file_that_fails_to_import(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "crashy", "raise RuntimeError('no import for you')\n")
    plugins, reported = make_plugins(path, tmp_path / "missing.py")
    assert reported[0] == f"plugin {path} failed to import: RuntimeError: no import for you"
    assert reported[1].startswith(f"plugin {tmp_path / 'missing.py'} failed to import: UserError: no such file")
    session, frontend = make_session(plugins, random_model)
    run_lines(session, frontend, ":temp 0.5", "recipe for roast")
    assert len(frontend.samples) == 1 and session.settings.temperature == 0.5


def test_unknown_hook_and_bad_signature_are_reported(tmp_path: Path) -> None:
    typo = write_plugin(tmp_path, "typo", """
        @hookimpl
        def on_tokens(word):
            pass
    """)
    badsig = write_plugin(tmp_path, "badsig", """
        @hookimpl
        def on_token(word, colour):
            pass
    """)
    _, reported = make_plugins(typo, badsig)
    assert f"plugin {typo}: unknown hook on_tokens ignored (did you mean on_token?)" in reported
    assert any(r.startswith(f"plugin {badsig} not loaded:") and "colour" in r for r in reported)


# --- commands: clashes, overrides, isolation -------------------------------------------------------


def test_clash_with_builtin_is_an_error_and_builtin_still_works(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "clash", """
        @hookimpl
        def register_commands(register):
            register("temp", lambda session, args: session.say("hijacked"))
            register("shout", lambda session, args: session.say(args.upper()), help="say it louder")
    """)
    plugins, reported = make_plugins(path)
    assert reported == [f"plugin {path}: command :temp not registered: :temp is already registered by "
                        "builtin:settings_commands (ask for override to replace it)"]
    session, frontend = make_session(plugins, random_model)
    run_lines(session, frontend, ":temp 0.3", ":shout hi", ":help shout")
    assert session.settings.temperature == 0.3
    assert "hijacked" not in frontend.text()
    assert "HI" in frontend.text("info") and f"from plugin {path}" in frontend.text()


def test_override_replaces_a_builtin(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "override", """
        @hookimpl
        def register_commands(register):
            def temp(session, args):
                session.update(temperature=float(args) / 2)
                session.say("halved")
            register("temp", temp, usage=":temp T", help="half of T", override=True)
    """)
    plugins, reported = make_plugins(path)
    assert reported == []
    assert plugins.infos[str(path)].commands == ["temp"]
    assert "temp" not in plugins.infos["builtin:settings_commands"].commands
    session, frontend = make_session(plugins, random_model)
    run_lines(session, frontend, ":temp 0.8")
    assert session.settings.temperature == 0.4 and "halved" in frontend.text()


def test_essential_builtins_can_never_be_replaced(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "essential", """
        @hookimpl
        def register_commands(register):
            register("quit", lambda session, args: None, override=True)
            register("help", lambda session, args: None, override=True, essential=True)
            register("bye", lambda session, args: None, aliases=("exit",), override=True)
    """)
    plugins, reported = make_plugins(path)
    assert [r.split(": ", 2)[2] for r in reported] == [
        ":quit is an essential built-in and cannot be replaced",
        ":help is an essential built-in and cannot be replaced",
        ":exit is an essential built-in and cannot be replaced",
    ]
    session, frontend = make_session(plugins, random_model)
    run_lines(session, frontend, ":exit")
    assert session.quit_requested


def test_bad_registrations_are_reported_and_the_rest_registered(tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "sloppy", """
        @hookimpl
        def register_commands(register):
            register("two words", lambda session, args: None)
            register("nohandler", "not a function")
            register("typo", lambda session, args: None, halp="misspelt option")
            register("badalias", lambda session, args: None, aliases=("two words",))
            register(":Good", lambda session, args: None, aliases=":GD")
            raise RuntimeError("oops after registering")
    """)
    plugins, reported = make_plugins(path)
    assert len(reported) == 5
    assert "'two words' not registered" in reported[0]
    assert "is not callable" in reported[1]
    assert "halp" in reported[2]
    assert "command :badalias not registered: bad alias in ('two words',)" in reported[3]
    assert reported[4] == f"plugin {path} failed in register_commands: RuntimeError: oops after registering"
    assert plugins.infos[str(path)].commands == ["good"]
    assert plugins.commands.get("gd") is plugins.commands.get("good") is not None


def test_raising_command_is_an_error_and_the_session_goes_on(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "buggy", """
        @hookimpl
        def register_commands(register):
            register("boom", lambda session, args: 1 / 0, help="divide by zero")
    """)
    plugins, _ = make_plugins(path)
    session, frontend = make_session(plugins, random_model)
    run_lines(session, frontend, ":boom", "recipe for roast")
    assert frontend.text("error") == f":boom failed ({path}): ZeroDivisionError: division by zero"
    assert len(frontend.samples) == 1


# --- listeners --------------------------------------------------------------------------------------


LISTENER = """
    calls = {}
    ended = []
    @hookimpl
    def on_token(word, sample_key):
        calls[sample_key] = calls.get(sample_key, 0) + 1
        if word:
            raise ValueError("cannot take " + word)
    @hookimpl
    def on_sample_end(sample):
        ended.append((sample.key, sample.stop_reason.value, len(sample.token_ids)))
"""


def test_raising_on_token_is_muted_for_that_sample_only(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "noisy", LISTENER)
    witness = write_plugin(tmp_path, "witness", """
        seen = []
        @hookimpl
        def on_token(token_id, probability, step, sample_key):
            seen.append((sample_key, step, token_id, probability))
    """)
    plugins, reported = make_plugins(path, witness)
    session, frontend = make_session(plugins, random_model, n=3, max_tokens=8)
    run_lines(session, frontend, "recipe for roast")
    noisy = sys.modules["recipe_repl_plugin_noisy"]
    seen = sys.modules["recipe_repl_plugin_witness"].seen
    samples = frontend.samples
    assert len(samples) == 3 and all(len(s.token_ids) >= 1 for s in samples)
    # muted after its first failure in each sample, called again for the next sample
    assert noisy.calls == {s.key: 1 for s in samples}
    # reported once for the whole generation, naming the plugin
    assert [p for p in plugins.problems if "on_token" in p] == [
        f"plugin {path} failed in on_token: ValueError: cannot take {samples[0].words[0]} "
        "(off for the rest of this sample)"
    ]
    assert reported == plugins.problems
    # the other plugin saw every word, and on_sample_end still ran for the noisy one
    for s in samples:
        steps = [(step, tok) for key, step, tok, _ in seen if key == s.key]
        expected = list(enumerate(s.token_ids)) + ([(len(s.token_ids), 0)] if s.stop_reason == StopReason.STOP_TOKEN
                                                    else [])
        assert steps == expected
    assert [e[0] for e in noisy.ended] == [s.key for s in samples]


def test_raising_on_prompt_and_on_sample_end_do_not_stop_generation(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "fragile", """
        @hookimpl
        def on_prompt(prompt, prompt_ids, settings, sample_key):
            assert prompt_ids and settings.seed == 1
            raise KeyError(prompt)
        @hookimpl
        def on_sample_end(sample):
            raise OSError("disk full")
    """)
    plugins, reported = make_plugins(path)
    session, frontend = make_session(plugins, random_model, n=2)
    run_lines(session, frontend, "recipe for roast", "recipe for")
    assert len(frontend.samples) == 4
    assert reported == [
        f"plugin {path} failed in on_prompt: KeyError: 'recipe for roast'",
        f"plugin {path} failed in on_sample_end: OSError: disk full",
        f"plugin {path} failed in on_prompt: KeyError: 'recipe for'",
        f"plugin {path} failed in on_sample_end: OSError: disk full",
    ]


# --- processors ------------------------------------------------------------------------------------


PROCESSORS = """
    import numpy as np

    def _force(settings, args, vocab):
        if len(args) != 1 or args[0] not in vocab:
            raise UserError("usage: :use force WORD")
        token = vocab.id_of(args[0])
        def force(logits, context):
            out = np.full_like(logits, -np.inf)
            out[:, token] = 0.0
            return out
        return force

    def _broken(settings, args, vocab):
        if args == ("at-setup",):
            return {}["nothing"]
        return lambda logits, context: logits[:, :2]

    @hookimpl
    def register_processors(register):
        register("force", _force, help="always the same word")
        register("broken", _broken)
        register("temperature", _force)
"""


def test_processor_by_name_from_use_and_config(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "procs", PROCESSORS)
    plugins, reported = make_plugins(path)
    assert reported == [f"plugin {path}: processor 'temperature' not registered: already registered by "
                        "builtin:processors (ask for override to replace it)"]
    session, frontend = make_session(plugins, random_model, max_tokens=4)
    run_lines(session, frontend, ":use force nowhere", ":use force chicken", "recipe for")
    assert frontend.text("error") == "usage: :use force WORD"
    assert frontend.samples[-1].words == ["chicken"] * 4
    config_settings = Settings.from_mapping({"use": [["force", ["salt"]]], "max_tokens": 3, "seed": 2})
    session, frontend = make_session(plugins, random_model)
    session.settings = config_settings
    run_lines(session, frontend, "recipe for roast")
    assert frontend.samples[-1].words == ["salt"] * 3


def test_overriding_a_settings_driven_processor_keeps_it_automatic(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "greedy", """
        import numpy as np

        def _topk(settings, args, vocab):
            k = settings.top_k
            if k == 0:
                return None
            def last_ids(logits, context):  # "top-k" now keeps the k highest ids that are possible
                out = np.full_like(logits, -np.inf)
                for row in range(logits.shape[0]):
                    ids = np.flatnonzero(~np.isinf(logits[row]))[-k:]
                    out[row, ids] = logits[row, ids]
                return out
            return last_ids

        @hookimpl
        def register_processors(register):
            register("top-k", _topk, order=40, override=True)
    """)
    plugins, reported = make_plugins(path)
    assert reported == [] and plugins.processors["top-k"].automatic
    assert plugins.infos[str(path)].processors == ["top-k"]
    assert "top-k" not in plugins.infos["builtin:processors"].processors
    session, frontend = make_session(plugins, random_model, max_tokens=6)
    run_lines(session, frontend, ":topk 1", "recipe for")
    assert frontend.samples[0].words == [WORDS[-1]] * 6


def test_broken_processor_is_reported_and_switched_off(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "procs", PROCESSORS)
    plugins, reported = make_plugins(path)
    session, frontend = make_session(plugins, random_model, max_tokens=5)
    run_lines(session, frontend, ":use broken at-setup", ":use broken", "recipe for", "recipe for")
    assert frontend.text("error") == f"processor broken (plugin {path}) failed: KeyError: 'nothing'"
    assert len(frontend.samples) == 2 and all(len(s.token_ids) >= 1 for s in frontend.samples)
    failures = [r for r in reported if "processor broken failed" in r]
    assert len(failures) == 2  # once per generation
    assert "off for the rest of this generation" in failures[0]


# --- CLI subcommands and model loaders ------------------------------------------------------------


def test_cli_subcommands_added_and_builtins_protected(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from recipe_repl.frontends.cli import build_cli

    path = write_plugin(tmp_path, "subcmds", """
        import click

        @hookimpl
        def register_cli_commands(cli):
            @cli.command("hello")
            def hello():
                "Say hello."
                click.echo("hello from a plugin")

            @cli.command("plugins")
            def hijack():
                click.echo("hijacked")
    """)
    plugins, reported = make_plugins(path)
    cli = build_cli(plugins)
    assert reported == [f"plugin {path}: subcommand 'plugins' not registered: already registered by "
                        "builtin:cli_commands"]
    assert plugins.infos[str(path)].cli_commands == ["hello"]
    result = CliRunner().invoke(cli, ["plugins", "--json"], obj=plugins)
    assert result.exit_code == 0 and "hijacked" not in result.output
    listed = {i["name"]: i for i in json.loads(result.output)}
    assert listed[str(path)]["cli_commands"] == ["hello"] and listed[str(path)]["source"] == "module"


def test_model_loader_from_a_plugin(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "loader", f"""
        from pathlib import Path
        from recipe_repl.model.engine import OnnxEngine

        @hookimpl
        def register_model_loaders(register):
            register("alias", lambda p: p.suffix == ".alias", lambda p, provider, threads:
                     OnnxEngine(Path({str(random_model)!r}), provider=provider, threads=threads))
            register("crash", lambda p: p.suffix == ".crash", lambda p, provider, threads: 1 / 0)
    """)
    plugins, reported = make_plugins(path)
    assert reported == [] and plugins.infos[str(path)].loaders == ["alias", "crash"]
    engine = plugins.load_model(tmp_path / "x.alias", "cpu")
    assert engine.vocab.id_of("chicken") > 1
    with pytest.raises(UserError, match=f"plugin {path}: loader crash cannot open .*ZeroDivisionError"):
        plugins.load_model(tmp_path / "x.crash", "cpu")


# --- tracing ---------------------------------------------------------------------------------------


def test_trace_switch_writes_hook_calls(tmp_path: Path, random_model: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_plugin(tmp_path, "traced", LISTENER)
    monkeypatch.setenv("RECIPE_REPL_TRACE_HOOKS", "1")
    plugins, _ = make_plugins(path)
    session, frontend = make_session(plugins, random_model, max_tokens=3)
    run_lines(session, frontend, "recipe for")
    err = capsys.readouterr().err
    assert f"trace: loaded plugin {path} (module): on_sample_end, on_token" in err
    assert "trace: builtin:settings_commands.register_commands(register)" in err
    assert f"trace: {path}.on_token(word=" in err
    assert f"trace: {path}.on_sample_end(sample=" in err
    monkeypatch.delenv("RECIPE_REPL_TRACE_HOOKS")
    make_plugins(path)
    assert "trace:" not in capsys.readouterr().err
