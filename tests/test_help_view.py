"""`:help` fits the terminal: at 60, 80 and 120 columns no line is wider than the terminal and no word is cut
(issue 20 §6)."""

from __future__ import annotations

import io

import pytest

from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views.help_view import CommandList, usage_column
from tests.helpers import lines, run_script


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("width", [60, 80, 120])
def test_help_fits_the_width_with_no_cut_word(random_model, plugins, width):
    run = run_script(random_model, plugins, lines(":help"), width=width)
    listing = run.out.split("commands (anything else is a prompt")[1]
    assert all(len(line) <= width for line in listing.splitlines())
    specs = run.session.plugins.commands.specs()
    own = sum(spec.synopsis.count("…") + spec.help.count("…") for spec in specs)
    assert listing.count("…") == own  # no ellipsis of rich's: nothing was cut
    flat = words(listing)
    assert len(specs) > 30
    for spec in specs:  # every usage and every help, whole, word after word
        assert words(spec.synopsis) in flat and words(spec.help) in flat, spec.name
    if width >= 80:  # two columns: a help starts on its usage's line
        assert any(line.startswith(":temp T ") and "temperature" in line for line in listing.splitlines())


def test_a_usage_too_wide_for_the_column_gets_a_line_of_its_own() -> None:
    rows = [(":a", "short help"), (":long " + "x" * 40, "help of the long one, wrapped under it")]
    out = [t.plain for t in CommandList(rows).lines(60)]
    column = usage_column([u for u, _ in rows], 60)
    assert column == 2 and out[0].startswith(":a  short help")
    assert out[1] == rows[1][0] and out[2].startswith(" " * (column + 2) + "help of the long one")


def test_help_in_batch_mode_fits_too(random_model, plugins):
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(random_model))
    assert BatchRunner(session, frontend).run([":help"]) == 0
    assert all(len(line) <= 80 for line in err.getvalue().splitlines())
    assert ":pick" not in err.getvalue()  # interactive-only commands are not listed in batch mode
