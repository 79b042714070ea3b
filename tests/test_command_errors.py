"""Every built-in command answers a mistake with one line that shows the fix.

A wrong use (too many arguments, an unknown keyword) names the command's usage and `(see :help
NAME)`; a bad value names an example of a good one (`e.g. :temp 0.7`). The settings stay as they
were. The list of commands is read from the plugin manager, so a new built-in is checked too.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.frontends.repl import ReplFrontend, run_line
from recipe_repl.plugin.commands import CommandSpec
from recipe_repl.plugin.hookcall import is_builtin
from recipe_repl.session.session import ModelSpec, Session

BAD_ARGS = ("abc", "abc def 1 2 3 4 5 6 7 8 9")
# Commands whose argument is free text (any words are a good one): for them only nothing is wrong.
FREE_TEXT = {"stop", "score"}


def _repl(model: Path, plugins) -> tuple[Session, ReplFrontend, io.StringIO]:
    buf = io.StringIO()
    frontend = ReplFrontend(Console(file=buf, width=400, color_system=None, highlight=False))
    session = Session(plugins, frontend, ModelSpec(model), Settings(seed=1, max_tokens=8))
    frontend.session = session
    return session, frontend, buf


def _builtin_commands(plugins) -> list[CommandSpec]:
    return [spec for spec in plugins.commands.specs() if is_builtin(spec.plugin)]


def _bad_lines(spec: CommandSpec) -> list[str]:
    args = ("",) if spec.name in FREE_TEXT else BAD_ARGS
    return [f":{spec.name} {a}".rstrip() for a in args]


def _shows_the_fix(message: str, name: str) -> bool:
    return "e.g. :" in message or f"(see :help {name})" in message or "did you mean :" in message


def test_every_builtin_command_answers_a_bad_argument_with_one_line_and_the_fix(random_model, plugins):
    session, frontend, buf = _repl(random_model, plugins)
    run_line(frontend, session, "recipe for roast")  # :why, :back, :branch, … need a sample to check arguments
    assert session.last_samples
    specs = _builtin_commands(plugins)
    assert {"temp", "save", "why", "probs", "heat", "quit", "help"} <= {s.name for s in specs}
    for spec in specs:
        for line in _bad_lines(spec):
            before = (session.settings, frontend.heat, session.model, len(session.last_samples))
            buf.seek(0)
            buf.truncate()
            run_line(frontend, session, line)
            out = buf.getvalue().splitlines()
            assert len(out) == 1 and out[0].startswith("error: "), (line, out)
            assert _shows_the_fix(out[0], spec.name), (line, out[0])
            assert "unexpected" not in out[0] and "failed (builtin" not in out[0], (line, out[0])
            assert (session.settings, frontend.heat, session.model, len(session.last_samples)) == before, line
            assert not session.quit_requested, line


def test_wrong_usage_names_the_usage_and_help_and_a_bad_value_an_example(random_model, plugins):
    session, frontend, buf = _repl(random_model, plugins)
    for line in (":temp abc", ":temp 1 2", ":temp 9", ":raw maybe", ":reset now", ":save notes", ":help tmep"):
        run_line(frontend, session, line)
    assert buf.getvalue().splitlines() == [
        "error: temperature must be a number, not 'abc' — e.g. :temp 0.7",
        "error: too many arguments — usage: :temp T, e.g. :temp 0.7 (see :help temp)",
        "error: temperature must be between 0 and 5 — e.g. :temp 0.7",
        "error: on or off, not 'maybe' — usage: :raw on|off, e.g. :raw on (see :help raw)",
        "error: no arguments expected — usage: :reset (see :help reset)",
        "error: save as .md (Markdown) or .json, not 'notes' — e.g. :save session.md",
        "error: no command :tmep — did you mean :help temp?",
    ]
    assert session.settings == Settings(seed=1, max_tokens=8)


def test_help_shows_the_example(random_model, plugins):
    session, frontend, buf = _repl(random_model, plugins)
    run_line(frontend, session, ":help temp")
    assert "e.g. :temp 0.7" in buf.getvalue()


def test_batch_mode_keeps_the_line_number_before_the_same_message(random_model, plugins):
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=1, max_tokens=3))
    status = BatchRunner(session, frontend).run([":temp abc", "recipe", ":max 1 2", ":score"])
    assert status == 1
    assert err.getvalue().splitlines() == [
        "line 1: error: temperature must be a number, not 'abc' — e.g. :temp 0.7",
        "line 3: error: too many arguments — usage: :max N, e.g. :max 200 (see :help max)",
        "line 4: error: usage: :score TEXT, e.g. :score mix the flour and sugar . (see :help score)",
    ]
    assert len(out.getvalue().splitlines()) == 1


PLUGIN = """
from recipe_repl.base.errors import BadValue, UsageError
from recipe_repl.plugin.hookspecs import hookimpl


def _times(session, args):
    if len(args.split()) != 1:
        raise UsageError()
    if not args.isdigit():
        raise BadValue(f"a count, not {args!r}")


@hookimpl
def register_commands(register):
    register("times", _times, usage=":times N", example=":times 3")
"""


def test_a_plugin_command_gets_the_same_answers(random_model, tmp_path):
    """Plugins raise the same two errors and get their own usage and example added."""
    from recipe_repl.plugin.manager import Plugins

    path = tmp_path / "times_plugin.py"
    path.write_text(PLUGIN, encoding="utf-8")
    plugins = Plugins(load_third_party=True, modules=[str(path)], entry_points=False)
    session, frontend, buf = _repl(random_model, plugins)
    run_line(frontend, session, ":times")
    run_line(frontend, session, ":times x")
    assert buf.getvalue().splitlines() == [
        "error: usage: :times N, e.g. :times 3 (see :help times)",
        "error: a count, not 'x' — e.g. :times 3",
    ]


@pytest.mark.parametrize("line", [":temp", ":seed", ":provider", ":heat", ":lenpen", ":beam", ":branch 1"])
def test_a_missing_argument_is_a_usage_error(random_model, plugins, line):
    session, frontend, buf = _repl(random_model, plugins)
    run_line(frontend, session, line)
    [out] = buf.getvalue().splitlines()
    name = line.split()[0][1:]
    assert out.startswith("error: ") and f"usage: :{name}" in out and f"(see :help {name})" in out
