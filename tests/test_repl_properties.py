"""Property tests: no typed line crashes the command parser, the session, the tokenizer or the REPL's helpers.

The only exception a line may raise is UserError (shown as one line in the REPL).
"""

from __future__ import annotations

import io
import os
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from rich.console import Console

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.frontends.completion import ReplCompleter, ReplLexer
from recipe_repl.frontends.repl import ReplFrontend
from recipe_repl.model.vocab import detokenize
from recipe_repl.plugin.commands import parse_command
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views.render import safe
from tests.conftest import WORDS

COMMANDS = sorted({
    "temp", "temperature", "topk", "topp", "minp", "repeat", "max", "seed", "n", "unk", "stop", "raw", "use",
    "settings", "reset", "quit", "exit", "help", "model", "provider", "continue", "c", "save", "preset",
    "probs", "compare", "pick",
})
ARG_WORDS = ["0", "1", "0.2", "-1", "5", "100", "1e9", "nan", "inf", "on", "off", "every", "first", "list", "save",
             "x.md", "x.json", "'", '"', "[bold]", "\x1b[31m", "=1", "s", ""]
some_text = st.text(st.characters(codec="utf-8"), max_size=40)
args = st.lists(st.one_of(st.sampled_from(ARG_WORDS), some_text), max_size=3).map(" ".join)
command_lines = st.builds(lambda name, a: f":{name} {a}", st.sampled_from(COMMANDS), args)
any_line = st.one_of(some_text, command_lines, st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join))
SAFE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class ScriptedFrontend(ReplFrontend):
    """The REPL's view on a StringIO, answering :pick's questions from a list (then stopping)."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__(Console(file=io.StringIO(), width=80, color_system=None))
        self.answers = answers

    def ask(self, question: str) -> str:
        return self.answers.pop(0) if self.answers else "s"


@pytest.fixture(scope="module")
def engine(random_model):
    from recipe_repl.plugin.manager import Plugins

    return Plugins(load_third_party=False).load_model(random_model)


@pytest.fixture()
def in_tmp() -> Iterator[Path]:
    """Run in an empty folder: `:save x.md` must not write into the repository."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(old)


@given(line=st.one_of(some_text, command_lines))
@SAFE
def test_parse_command_only_raises_user_error(line):
    try:
        name, rest = parse_command(line)
    except UserError:
        return
    assert name == name.lower() and line.strip().startswith(":")


@given(line=any_line, answers=st.lists(st.one_of(st.sampled_from(["", "1", "2", "9", "s", "=1"]), some_text),
                                       max_size=4))
@SAFE
def test_handle_line_only_raises_user_error(engine, plugins, random_model, in_tmp, line, answers):
    words = line.split()
    if line.lstrip().startswith(":") and words and words[0].lower() in (":save", ":model", ":preset"):
        assume(not any(c in line for c in "/~\\") and ".." not in line)  # keep writes in the temporary folder
    frontend = ScriptedFrontend(answers)
    session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=1, max_tokens=4), engine=engine)
    session.prompt("recipe for roast")
    try:
        session.handle_line(line)
        if session.settings.n * session.settings.max_tokens <= 2000:
            session.handle_line("roast chicken")  # and the session still works afterwards
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
    out = frontend.console.file.getvalue()
    assert "\x1b" not in out and "Traceback" not in out


@given(text=st.text(st.characters(codec="utf-8"), max_size=80))
@SAFE
def test_tokenizer_and_detokenizer_never_crash(engine, text):
    vocab = engine.vocab
    ids = vocab.encode(text)
    assert all(1 <= i < len(vocab) for i in ids)
    assert isinstance(detokenize(vocab.decode_tokens(ids)), str)
    assert isinstance(detokenize(text.split(" ")), str)
    assert set(vocab.unknown_words(text)) <= set(vocab.prepare(text))


@given(text=st.text(st.characters(codec="utf-8"), max_size=80))
@SAFE
def test_safe_leaves_no_control_characters(text):
    shown = safe(text)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in shown)
    if text.isprintable():
        assert shown == text


@given(line=any_line)
@SAFE
def test_lexer_and_completer_never_crash(engine, plugins, random_model, line):
    session = Session(plugins, ScriptedFrontend([]), ModelSpec(random_model), Settings(), engine=engine)
    fragments = ReplLexer(lambda: session).lex_line(line)
    assert "".join(text for _, text in fragments) == line  # the lexer only styles, never changes, the text
    for _ in ReplCompleter(lambda: session).get_completions(Document(line), CompleteEvent(completion_requested=True)):
        pass
