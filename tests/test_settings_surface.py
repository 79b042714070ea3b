"""Every setting can be reached everywhere: a command-line flag, a `:` command and a key in `--json`
records; `--help` lists the shared options in one order; `--vocab` reaches the model loaders and
survives `:model` and `:provider`."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.frontends.cli import build_cli
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import ModelSpec, Session
from tests.conftest import WORDS
from tests.helpers import Recorder, write_plugin

FIELDS = [f.name for f in dataclasses.fields(Settings)]

# A processor that does nothing, so that `use` has something to use.
NUDGE = """
    @hookimpl
    def register_processors(register):
        register("nudge", lambda settings, args, vocab: (lambda logits, context: logits), help="does nothing")
"""

# Each setting, set on the command line (argv) and by a `:` command, and the value both must give.
CHANGES: dict[str, tuple[list[str], str, Any]] = {
    "temperature": (["--temperature", "0.5"], ":temp 0.5", 0.5),
    "top_k": (["--top-k", "5"], ":topk 5", 5),
    "top_p": (["--top-p", "0.9"], ":topp 0.9", 0.9),
    "min_p": (["--min-p", "0.01"], ":minp 0.01", 0.01),
    "repetition_penalty": (["--repetition-penalty", "1.2"], ":repeat 1.2", 1.2),
    "max_tokens": (["--max-tokens", "3"], ":max 3", 3),
    "seed": (["--seed", "4"], ":seed 4", 4),
    "n": (["--n", "2"], ":n 2", 2),
    "allow_unk": (["--no-unk"], ":unk off", False),
    "stop": (["--stop", "xyz"], ":stop xyz", "xyz"),
    "probs": (["--probs", "first"], ":probs first", "first"),
    "probs_n": (["--probs-n", "7"], ":probs first 7", 7),
    "raw": (["--raw"], ":raw on", True),
    "use": (["--use", "nudge 2"], ":use nudge 2", (("nudge", ("2",)),)),
    "beam": (["--beam", "2"], ":beam 2", 2),
    "length_penalty": (["--length-penalty", "0.5"], ":lenpen 0.5", 0.5),
}


def test_the_table_above_covers_every_setting() -> None:
    assert sorted(CHANGES) == sorted(FIELDS)


def _plugins(tmp_path: Path) -> Plugins:
    plugins = Plugins(load_third_party=True, entry_points=False, modules=[str(write_plugin(tmp_path, "nudge", NUDGE))])
    assert plugins.problems == []
    return plugins


def _option_names(command: click.Command) -> list[str]:
    return [p.name for p in command.params if isinstance(p, click.Option) and p.name]


def test_every_setting_has_a_flag_on_the_repl_and_on_generate(plugins: Plugins) -> None:
    cli = build_cli(plugins)
    for command in (cli, cli.commands["generate"]):
        names = _option_names(command)
        assert set(FIELDS) <= set(names), f"{command.name}: settings without a flag"
        assert [n for n in names if n in FIELDS] == FIELDS  # in the dataclass's order


def test_flags_set_every_setting_and_records_carry_every_setting(tmp_path: Path, random_model: Path) -> None:
    plugins = _plugins(tmp_path)
    argv = ["generate", "recipe for roast", "--model", str(random_model), "--json"]
    for flag_args, _, _ in CHANGES.values():
        argv += flag_args
    result = CliRunner().invoke(build_cli(plugins), argv, obj=plugins)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2  # --n 2
    expected = Settings().replace(**{name: value for name, (_, _, value) in CHANGES.items()}).as_dict()
    for record in records:
        assert {k: record[k] for k in FIELDS} == expected


def test_every_setting_has_a_command(tmp_path: Path, random_model: Path) -> None:
    plugins = _plugins(tmp_path)
    session = Session(plugins, Recorder(), ModelSpec(random_model, "cpu"))
    for name, (_, line, value) in CHANGES.items():
        before = session.settings
        session.handle_line(line)
        assert getattr(session.settings, name) == value, line
        assert getattr(before, name) != value  # the command did the change


def test_settings_change_only_through_update(plugins: Plugins, random_model: Path) -> None:
    session = Session(plugins, Recorder(), ModelSpec(random_model, "cpu"))
    session.handle_line(":temp 0.3")
    session.config.presets["cold"] = {"temperature": 0.1, "top_k": 3}
    session.handle_line(":preset cold")
    assert (session.settings.temperature, session.settings.top_k) == (0.1, 3)
    session.handle_line(":reset")
    assert session.settings == Settings()
    with pytest.raises(UserError, match="temperature must be between 0 and 5"):
        session.settings = Settings(temperature=9)  # even a plain assignment is validated by `update`
    assert session.settings == Settings()


# --- --help ------------------------------------------------------------------------------------------


def _help_options(args: list[str], plugins: Plugins) -> list[str]:
    result = CliRunner().invoke(build_cli(plugins), [*args, "--help"], obj=plugins, terminal_width=200)
    assert result.exit_code == 0, result.output
    options = result.output.split("Options:\n", 1)[1].split("\n\n", 1)[0]
    # "  -m, --model FILE  an .onnx model file" → "--model"; "--unk / --no-unk" → "--unk"
    return [next(w for w in line.split() if w.startswith("--")).rstrip(",")
            for line in options.splitlines() if line.lstrip().startswith("-")]


def test_generate_help_lists_the_shared_options_in_the_top_level_order(plugins: Plugins) -> None:
    top = _help_options([], plugins)
    generate = _help_options(["generate"], plugins)
    assert generate[0] == top[0] == "--model"
    assert generate[:4] == ["--model", "--vocab", "--provider", "--threads"]
    assert generate[-1] == top[-1] == "--help"
    assert [o for o in top if o in generate] == generate  # same options, same order
    assert generate.index("--temperature") < generate.index("--raw") < generate.index("--json")
    assert top.index("--json") < top.index("--batch-size") < top.index("--help")


def test_vocab_is_shown_in_help(plugins: Plugins) -> None:
    result = CliRunner().invoke(build_cli(plugins), ["--help"], obj=plugins, terminal_width=200)
    assert "--vocab FILE" in result.output and "a model that carries none" in result.output


# --- --vocab reaches the loaders and survives :model and :provider -----------------------------------


@pytest.fixture()
def no_vocab_models(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two lecture-style models that carry no vocabulary, and their vocabulary file (one word a line)."""
    a = build_random_lstm(tmp_path / "a.onnx", WORDS, seed=1, stateless=True)
    b = build_random_lstm(tmp_path / "b.onnx", WORDS, seed=2, stateless=True)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(w + "\n" for w in WORDS), encoding="utf-8")
    return a, b, vocab


def test_vocab_survives_model_and_provider_switches(plugins: Plugins, no_vocab_models: tuple[Path, Path, Path]) -> None:
    a, b, vocab = no_vocab_models
    with pytest.raises(UserError, match="carries no vocabulary"):
        Session(plugins, Recorder(), ModelSpec(b, "cpu")).engine  # noqa: B018 - opening is the test
    frontend = Recorder()
    session = Session(plugins, frontend, ModelSpec(a, "cpu", vocab=vocab), Settings(seed=1, max_tokens=3))
    assert list(session.engine.vocab.words) == WORDS
    session.handle_line(f":model {b}")
    assert session.engine.info.path == str(b) and list(session.engine.vocab.words) == WORDS
    session.handle_line(":provider cpu")
    assert session.model.vocab == vocab and list(session.engine.vocab.words) == WORDS
    assert session.handle_line("recipe for")[0].prompt == "recipe for"


def test_vocab_on_the_command_line_survives_switches(no_vocab_models: tuple[Path, Path, Path]) -> None:
    a, b, vocab = no_vocab_models
    from tests.helpers import cli

    r = cli(["--model", str(a), "--vocab", str(vocab), "--seed", "1", "--max-tokens", "3"],
            f":model {b}\n:provider cpu\nrecipe for roast\n")
    assert r.returncode == 0, r.stderr
    assert f"model {b} loaded" in r.stderr.decode() and r.stdout.decode().startswith("Recipe for roast")


def test_plugin_loaders_get_the_vocab_when_they_take_it(tmp_path: Path, random_model: Path) -> None:
    path = write_plugin(tmp_path, "loaders", textwrap.dedent(f"""
        from pathlib import Path
        from recipe_repl.model.engine import OnnxEngine
        seen = []

        @hookimpl
        def register_model_loaders(register):
            register("old", lambda p: p.suffix == ".old", lambda p, provider, threads:
                     OnnxEngine(Path({str(random_model)!r}), provider=provider, threads=threads))
            register("new", lambda p: p.suffix == ".new", lambda p, provider, threads, vocab=None:
                     seen.append(vocab) or OnnxEngine(Path({str(random_model)!r}), provider, threads, vocab))
    """))
    plugins = Plugins(load_third_party=True, modules=[str(path)])
    assert plugins.problems == []
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(w + "\n" for w in WORDS), encoding="utf-8")
    assert plugins.load_model(tmp_path / "x.old", "cpu").vocab.id_of("chicken") > 1  # the old way still works
    engine = plugins.load_model(tmp_path / "x.new", "cpu", vocab=vocab)
    assert list(engine.vocab.words) == WORDS
    with pytest.raises(UserError, match="model loader old .* takes no vocabulary file"):
        plugins.load_model(tmp_path / "x.old", "cpu", vocab=vocab)
    builtin = plugins.load_model(random_model, "cpu", vocab=vocab)  # the ONNX loader takes it too
    assert list(builtin.vocab.words) == WORDS


def test_pick_leaves_last_prompt_set_through_the_one_writer(random_model: Path, plugins: Plugins) -> None:
    from tests.helpers import lines, run_script

    run = run_script(random_model, plugins, lines(":pick 2", "recipe for roast", "1", "s"))
    assert run.session.last_prompt == "recipe for roast"  # set by Session.remember, as after any prompt
