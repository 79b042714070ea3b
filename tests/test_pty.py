"""One real pseudo-terminal session: the installed CLI on a random model, driven with pexpect.

Start, `:temp 0.2`, `:topk 5`, a prompt whose words stream, Ctrl-C mid-generation (the words stay,
the footer says "interrupted"), the prompt comes back, `:quit`, exit status 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

TIMEOUT = 30  # generous: a loaded CI machine may take seconds to import onnxruntime
# pexpect answers no cursor-position request (a real terminal does): without this prompt-toolkit waits for one.


def _ctrl_c_on() -> None:
    """In the child: Ctrl-C as a terminal delivers it, even if the test runner started with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# A plugin that makes the stop token impossible, so `:max 100000` is certainly still generating at Ctrl-C.
NO_STOP_PLUGIN = """
from recipe_repl.plugin.hookspecs import hookimpl

def _factory(settings, args, vocab):
    def no_stop(logits, context):
        logits[:, 0] = -float("inf")
        return logits
    return no_stop

@hookimpl
def register_processors(register):
    register("no-stop", _factory, help="never end at the stop token")
"""


def spawn_repl(model, *args: str, term: str = "xterm-256color"):
    """The REPL in a real 100×30 terminal of kind `term`, on `model` with `args` (Ctrl-C reaches it)."""
    env = dict(os.environ, TERM=term, COLUMNS="100", LINES="30", PROMPT_TOOLKIT_NO_CPR="1")
    env.pop("RECIPE_REPL_NO_PLUGINS", None)  # each test says --no-plugins itself where it wants that
    return pexpect.spawn(
        sys.executable, ["-c", "from recipe_repl.frontends.cli import main; main()", "--model", str(model), *args],
        env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(30, 100), preexec_fn=_ctrl_c_on,
    )


@contextlib.contextmanager
def recorded(child: pexpect.spawn, tmp_path: Path) -> Iterator[Path]:
    """Log what the terminal shows while the body types into `child`, then leave with :quit: a timeout or
    an early end fails the test with the last screenful; the REPL must exit 0 without a traceback."""
    log = tmp_path / "pty.log"
    with log.open("w") as child.logfile_read:
        try:
            yield log
            child.sendline(":quit")
            child.expect(pexpect.EOF)
        except (pexpect.TIMEOUT, pexpect.EOF):  # show what the terminal saw
            child.logfile_read.flush()
            pytest.fail(f"terminal session went wrong; it showed:\n{log.read_text()[-3000:]}")
    child.close()
    assert child.exitstatus == 0, log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])
def test_real_terminal_session(random_model, tmp_path, term):
    plugin = tmp_path / "no_stop.py"
    plugin.write_text(NO_STOP_PLUGIN)
    child = spawn_repl(random_model, "--seed", "1", "--plugin", str(plugin), term=term)
    with recorded(child, tmp_path):
        child.expect("Ctrl-D to leave")
        child.expect("› ")
        child.sendline(":temp 0.2")
        child.expect("temperature = 0.2")
        child.sendline(":topk 5")
        child.expect("top-k = 5")
        child.sendline(":max 100000")
        child.expect("max tokens = 100000")
        child.sendline(":use no-stop")
        child.expect("using no-stop")
        child.sendline("recipe for roast")
        child.expect("Recipe for roast")  # the prompt echo, then words stream in
        child.expect("salt")
        time.sleep(0.5)
        child.sendintr()
        # the model's perplexity, then the one of the distribution drawn from (the footer may wrap,
        # its style ending and starting again around the line end)
        gap = r"(?:\s|\x1b\[[\d;]*m)+"
        child.expect(rf"\d+ tokens · [\d,]+ words/s · perplexity [\d.,]+ \(model\) · [\d.,]+ at T = 0.2,{gap}top-k"
                     rf"{gap}5,{gap}no-stop{gap}·{gap}interrupted")
        child.expect("› ")
    assert (tmp_path / "state" / "recipe-repl" / "history").read_text().count(":temp 0.2") == 1


def test_ctrl_r_tab_and_suggestion_in_a_terminal(random_model, tmp_path):
    """Keys a person uses: Ctrl-R finds an old line, Tab completes a command, → takes the grey suggestion."""
    child = spawn_repl(random_model, "--no-plugins")

    def keys(*parts: str) -> None:
        for part in parts:  # one by one, as typed: the prompt redraws in between
            child.send(part)
            time.sleep(0.2)

    with recorded(child, tmp_path):
        child.expect("› ")
        child.sendline(":temp 0.4")
        child.expect("temperature = 0.4")
        child.sendline(":max 3")
        child.expect("max tokens = 3")
        keys("\x12", "temp", "\r", "\r")  # Ctrl-R temp, Enter ends the search, Enter runs it
        child.expect("temperature = 0.4")
        keys(":rese", "\t", "\r")  # Tab completes the only match, :reset
        child.expect("settings reset")
        keys(":te", "\x1b[C", "\r")  # → accepts the suggestion from history (:temp 0.4)
        child.expect("temperature = 0.4")


def test_step_and_pace_in_a_terminal(random_model, tmp_path):
    """`:pace` streams a sample in a real terminal; `:step` shows a table per Enter, Ctrl-C keeps the text."""
    child = spawn_repl(random_model, "--no-plugins", "--seed", "3", "--temperature", "0.8")
    with recorded(child, tmp_path):
        child.expect("› ")
        child.sendline(":pace 20")
        child.expect("pace = 20 ms")
        child.sendline(":max 6")
        child.expect("max tokens = 6")
        child.sendline("recipe for roast")
        child.expect(r"6 tokens · [\d,]+ words/s")
        child.expect("› ")
        child.sendline(":step")
        child.expect("one word at a time")
        child.expect("word 4: Enter, or s to stop: ")
        child.send("\r")
        child.expect("◀ drawn")
        child.expect(r"word 4: \S+ \(drawn at [\d.<]+%; the model gave it")
        child.expect("word 5: Enter, or s to stop: ")
        child.send("\r")
        child.expect("◀ drawn")
        child.expect("word 6: Enter, or s to stop: ")
        child.sendintr()
        child.expect(r"2 tokens · perplexity")
        child.expect("interrupted")
        child.expect("› ")


def test_raw_escape_sequences_typed_at_the_prompt_give_the_prompt_back(random_model, tmp_path):
    """ESC alone, ESC ESC, half a CSI or SS3, an unknown key code, a title escape and an unended paste,
    each typed and followed by Enter: the REPL stays up and :quit leaves with 0 (no traceback)."""
    child = spawn_repl(random_model, "--no-plugins", "--max-tokens", "2")
    with recorded(child, tmp_path):
        child.expect("› ")
        for keys in ["\x1b", "\x1b\x1b", "recipe \x1b", "\x1b[", "\x1bO", "\x1b[99~", "\x1b]0;x\x07",
                     "\x1b[200~abc"]:
            child.send(keys)
            time.sleep(0.3)  # longer than prompt-toolkit's wait for the rest of an escape sequence
            child.send("\r")
            child.send("\x1b[201~\r")  # ends a paste if one was started, else a stray key code and Enter
            child.sendline(":max 2")
            child.expect("max tokens = 2")
