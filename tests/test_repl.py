"""The REPL without a terminal: prompt-toolkit pipe input, DummyOutput, and a rich Console on a StringIO.

Every test drives a real session on the random-weight ONNX model: nothing of ONNX Runtime is mocked.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from rich.console import Console

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.completion import ReplCompleter, ReplLexer, toolbar
from recipe_repl.frontends.repl import ReplFrontend, history_file
from recipe_repl.generate.loop import StopReason
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views.render import END_MARKER, safe
from tests.helpers import CTRL_C, CTRL_D, lines, run_script


@pytest.fixture()
def session(random_model: Path, plugins) -> Iterator[Session]:
    """A session with a REPL frontend that prints nowhere (for completion and lexer tests)."""
    console = Console(file=io.StringIO(), width=80, color_system=None)
    yield Session(plugins, ReplFrontend(console), ModelSpec(random_model), Settings(seed=1))


def test_transcript_settings_prompt_stream_and_footer(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 0.2", ":topk 5", ":max 12", "recipe for roast"))
    assert run.status == 0
    assert "temperature = 0.2" in run.out and "top-k = 5" in run.out
    s = run.session.settings
    assert (s.temperature, s.top_k, s.max_tokens) == (0.2, 5, 12)
    [sample] = run.session.last_samples
    assert sample.text in run.out.replace("\n", " ")  # the streamed words read as the sample's text
    assert "12 tokens" in run.out and "words/s" in run.out and "max tokens" in run.out
    assert run.out.index("Recipe for roast") < run.out.index("12 tokens")


def test_stop_token_is_a_marker_never_text(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 200", *["recipe for roast"] * 6))
    ended = [e for e in run.session.transcript if e.kind == "prompt" and e.samples[0]["stop_reason"] == "stop token"]
    assert ended, "with random weights some of six samples end at the stop token"
    assert END_MARKER in run.out
    assert run.out.count("stop token") == run.out.count(END_MARKER) == len(ended)


def test_bad_command_and_bad_value_give_one_line_and_the_prompt_back(random_model, plugins):
    run = run_script(random_model, plugins, lines(":tmep 0.3", ":temp hot", ":temp 9", ":max 3", "recipe"))
    assert "error: unknown command :tmep — did you mean :temp?" in run.out
    assert "error: temperature must be a number, not 'hot'" in run.out
    assert "error: temperature must be between 0 and 5" in run.out
    assert run.session.settings.temperature == 1.0  # unchanged
    assert "3 tokens" in run.out  # the prompt came back and the next line ran
    assert "Traceback" not in run.out


def test_n_samples_are_numbered(random_model, plugins):
    run = run_script(random_model, plugins, lines(":n 3", ":max 5", "chicken"))
    assert len(run.session.last_samples) == 3
    for k in (1, 2, 3):
        assert f"#{k} " in run.out
    assert run.out.count("5 tokens") == 3


def test_raw_mode_shows_tokens(random_model, plugins):
    run = run_script(random_model, plugins, lines(":raw on", ":temp 0", ":max 6", "chicken , 1/2"))
    assert "chicken , 1 / 2" in run.out


def test_unknown_words_become_visible_unk(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 3", "recipe for zucchini"))
    assert "Recipe for [UNK]" in run.out


def test_continue_and_save_markdown_and_json(random_model, plugins, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_script(random_model, plugins,
                     lines(":temp 0.2", ":topk 5", ":max 8", "recipe for roast", ":continue", ":save x.md",
                           ":save x.json"))
    [first, second] = [e for e in run.session.transcript if e.kind == "prompt"]
    assert len(first.samples[0]["tokens"]) == 8 and len(second.samples[0]["tokens"]) == 8
    assert second.samples[0]["text"].startswith(first.samples[0]["text"])  # it read on from the first
    assert "…" in run.out  # the continuation is shown as reading on
    md = (tmp_path / "x.md").read_text()
    assert "## recipe for roast" in md and first.samples[0]["text"] in md
    data = json.loads((tmp_path / "x.json").read_text())
    assert [e["kind"] for e in data["entries"]].count("prompt") == 2
    assert "saved" in run.out


def paste(text: str) -> str:
    """Keys for pasted text: a terminal delivers pasted bytes (ESC included) inside a bracketed paste."""
    return f"\x1b[200~{text}\x1b[201~"


EVIL_WORDS = ["", "[UNK]", "[bold red]", "\x1b[31m", "\x07", "\u202e", "[/]", "[link=http://x]", "chicken", "roast"]


def test_hostile_input_is_shown_literally(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 3", paste(":\x1b[31mred\x07 x"), paste("[bold red]boom[/]")))
    assert "\x1b" not in run.out and "\x07" not in run.out
    assert "error: unknown command :\\x1b[31mred\\x07" in run.out  # ESC and BEL made visible
    echoed = [line for line in run.out.splitlines() if line.startswith("[UNK]")]
    assert echoed and "boom" not in echoed[0]  # the prompt is echoed as the model reads it: unknown words are [UNK]
    assert "warning: 'boom' is not in the vocabulary: the model reads [UNK]" in run.out  # named once, literally


def test_hostile_vocabulary_is_shown_literally(plugins, tmp_path):
    from recipe_repl.export.random_model import build_random_lstm

    model = build_random_lstm(tmp_path / "evil.onnx", EVIL_WORDS, scale=2.0, seed=3)
    run = run_script(model, plugins, lines(":max 60", ":probs first 8", "roast chicken", ":probs 8",
                                           ":compare 1 0.5", ":raw on", "roast"))
    assert "\x1b" not in run.out and "\x07" not in run.out and "\u202e" not in run.out
    generated = {w for s in run.session.transcript if s.kind == "prompt" for w in s.samples[0]["tokens"]}
    assert generated & {"\x1b[31m", "[bold red]", "\u202e"}, "the model did write hostile words"
    assert "\\x1b[31m" in run.out and "[bold red]" in run.out and "\\u202e" in run.out


def test_markup_is_literal_in_colour_too(random_model, plugins):
    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system="truecolor", force_terminal=True)
    frontend = ReplFrontend(console)
    frontend.message("[bold]x[/bold] \x1b]0;title\x07", "error")
    out = buf.getvalue()
    assert "[bold]x[/bold]" in out and "\\x1b]0;title\\x07" in out
    assert "\x1b]0" not in out  # no OSC sequence reached the terminal


def test_safe_escapes_controls_only():
    assert safe("1/2 cup, chopped — ½ tsp é") == "1/2 cup, chopped — ½ tsp é"
    assert safe("a\x1bb\tc\x00\u2028") == "a\\x1bb\\x09c\\x00\\u2028"


def test_ctrl_c_at_the_prompt_clears_the_line(random_model, plugins):
    run = run_script(random_model, plugins, ":temp 0.3" + CTRL_C + lines(":max 2", "recipe"))
    assert run.status == 0
    assert run.session.settings.temperature == 1.0  # the interrupted line never ran
    assert "2 tokens" in run.out


def test_quit_and_exit_leave(random_model, plugins):
    for word in (":quit", ":exit"):
        run = run_script(random_model, plugins, f"{word}\r:temp 0.5\r")
        assert run.status == 0 and run.session.quit_requested
        assert "temperature = 0.5" not in run.out


def test_ctrl_d_leaves_with_status_0(random_model, plugins):
    run = run_script(random_model, plugins, CTRL_D)
    assert run.status == 0 and "random.onnx" in run.out


def test_interrupted_generation_keeps_its_words(random_model, plugins):
    """Ctrl-C mid-generation: the loop stops, the words stay, the footer says so (a plugin raises it here)."""

    class Interrupter:
        def __init__(self) -> None:
            self.seen = 0

        def on_prompt(self, *args) -> None: ...

        def on_token(self, event) -> None:
            self.seen += 1
            if self.seen == 5:
                raise KeyboardInterrupt

        def on_sample_end(self, sample) -> None: ...

    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system=None)
    frontend = ReplFrontend(console)
    session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=1, max_tokens=1000, temperature=0.2,
                                                                          top_k=5))
    listener = session.listener
    session.listener = lambda extra=None, live=True: listener(Interrupter(), live)  # type: ignore[method-assign]
    samples = session.prompt("recipe for roast")
    assert samples[0].stop_reason == StopReason.INTERRUPTED
    assert "tokens · " in buf.getvalue() and buf.getvalue().rstrip().endswith("interrupted")
    assert samples[0].continuation.split()[0] in buf.getvalue()


def test_history_file_is_created_in_the_state_dir(tmp_path):
    history = history_file()
    assert (tmp_path / "state" / "recipe-repl" / "history").is_file()
    history.append_string(":temp 0.2")
    assert ":temp 0.2" in list(history_file().load_history_strings())


def test_history_persists_between_runs(random_model, plugins, tmp_path):
    run_script(random_model, plugins, lines(":temp 0.4"), history=history_file())
    assert ":temp 0.4" in (tmp_path / "state" / "recipe-repl" / "history").read_text()


# --- completion, lexer, toolbar --------------------------------------------------------------------


def complete(session: Session, text: str) -> list[str]:
    completer = ReplCompleter(lambda: session)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]


def test_completes_command_names(session):
    assert {":temp", ":temperature", ":topk", ":topp"} <= set(complete(session, ":t"))
    assert ":probs" in complete(session, ":pr") and ":pick" in complete(session, ":pi")


def test_completes_command_arguments(session):
    assert complete(session, ":probs ") == ["off", "first", "every", "5", "10", "20"]
    assert complete(session, ":probs ev") == ["every"]
    assert complete(session, ":raw o") == ["on", "off"]
    assert "temp" in complete(session, ":help te")
    assert "0.2" in complete(session, ":compare 1.0 0")


def test_completes_vocabulary_words_in_prompts(session):
    assert complete(session, "recipe for ro") == ["roast"]
    assert "chicken" in complete(session, "roast CH")
    assert complete(session, "recipe ") == []


def test_a_broken_plugin_completer_does_not_break_typing(session):
    from recipe_repl.plugin.commands import CommandSpec

    def broken(s, t):
        raise RuntimeError("oops")

    session.plugins.commands.add(CommandSpec("broken", lambda s, a: None, complete=broken))
    assert complete(session, ":broken x") == []


def test_lexer_marks_words_that_become_unk(session):
    lexer = ReplLexer(lambda: session)
    frags = lexer.lex_line("recipe for zucchini, roast  Chicken")
    marked = [text for style, text in frags if style == "class:unknown-word"]
    assert marked == ["zucchini,"]
    assert "".join(t for _, t in frags) == "recipe for zucchini, roast  Chicken"


def test_lexer_colours_commands(session):
    lexer = ReplLexer(lambda: session)
    assert ("class:command", ":temp") in lexer.lex_line(":temp 0.2")
    assert ("class:command.unknown", ":nope") in lexer.lex_line(":nope")


def test_toolbar_shows_live_settings(session):
    bar = toolbar(lambda: session)
    text = "".join(t for _, t in bar())
    assert "T 1" in text and "random.onnx" in text and "cpu" in text
    session.update(temperature=0.2, top_k=5, seed=7)
    text = "".join(t for _, t in bar())
    assert "T 0.2" in text and "top-k 5" in text and "seed 7" in text


def test_record_session_example_writes_an_svg(random_model, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "record_session.py"
    spec = importlib.util.spec_from_file_location("record_session", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.record(random_model, tmp_path / "session.svg")
    svg = (tmp_path / "session.svg").read_text()
    assert svg.startswith("<svg") and "recipe-repl" in svg
    assert "› recipe for roast chicken" in text and "T = 0.2" in text and "[UNK]" in text


def test_other_commands_tables_are_shown_literally(random_model, plugins):
    run = run_script(random_model, plugins, lines(paste(":stop [red]x \x1b[31m"), ":settings"))
    row = [ln for ln in run.out.splitlines() if ln.strip().startswith("│ stop") or " stop " in ln and "[red]" in ln]
    assert row and "[red]x \\x1b[31m" in row[0]
    assert "\x1b" not in run.out


def test_a_pasted_block_runs_line_by_line(random_model, plugins):
    run = run_script(random_model, plugins, paste(":temp 0.2\n:topk 5\n\n:max 4\nrecipe for roast\n") + "\r" + CTRL_D)
    s = run.session.settings
    assert (s.temperature, s.top_k, s.max_tokens) == (0.2, 5, 4)
    assert "4 tokens" in run.out


def test_long_streams_read_as_the_sample_text(random_model, plugins):
    """Only the last words are re-joined while streaming: the screen still matches the sample's text."""
    run = run_script(random_model, plugins, lines(":max 300", ":temp 0.5", "1/2 cup", "roast", "chicken , 1/2"))
    texts = [e.samples[0]["text"] for e in run.session.transcript if e.kind == "prompt"]
    assert len(texts) == 3 and max(len(t) for t in texts) > 200
    screen = run.out.replace("\n", " ")
    for text in texts:
        assert text in screen
