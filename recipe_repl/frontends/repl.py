"""The interactive REPL: a prompt-toolkit prompt, words streamed with rich as the model writes them.

    › recipe for roast chicken            (words the model does not know are underlined: they become [UNK])
    Recipe for roast chicken | mix salt … ⏹ [end]
      23 tokens · 410 words/s · stop token

`run_repl(make_session)` is what the CLI calls. `ReplFrontend` is the session's view (the
`Frontend` protocol); everything it prints goes through one rich `Console` passed in, and all model
and user text is shown literally (`render.safe` + `rich.text.Text`, never markup).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from rich.console import Console
from rich.text import Text

from recipe_repl.base.config import state_dir
from recipe_repl.base.errors import UserError
from recipe_repl.frontends.completion import STYLE, EscapeUnsafe, ReplCompleter, ReplLexer, toolbar
from recipe_repl.frontends.live_view import LiveView
from recipe_repl.generate.beam import chain_settings
from recipe_repl.generate.inspection import reshapes
from recipe_repl.generate.loop import Sample, StopReason
from recipe_repl.model.vocab import detokenize
from recipe_repl.session.session import Session
from recipe_repl.views import render

PROMPT = FormattedText([("class:prompt", "› ")])
def history_file() -> History:
    """The persistent history (`state_dir()/history`), or an in-memory one if it cannot be created."""
    folder = state_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "history"
        path.touch(exist_ok=True)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()


class ReplFrontend:
    """The terminal view of a session: streamed samples, one-line messages, tables, questions."""

    interactive = True
    model_probs = True  # the footer's perplexity and :heat use the model's probabilities

    def __init__(self, console: Console, input: Input | None = None, output: Output | None = None,
                 echo: bool = False) -> None:
        self.console = console
        self.input, self.output = input, output
        self.echo = echo  # repeat typed lines on the console (for recordings, where no terminal shows them)
        self.session: Session | None = None
        self.view: LiveView | None = None
        self._prompt: PromptSession[str] | None = None
        self._ask: PromptSession[str] | None = None
        self.heat = ""  # `:heat on|sampling`: words coloured by the model's probability, or the sampling one
        self.pace_ms = 0  # `:pace MS`: at most one streamed word every MS milliseconds (0: full speed)
        self.cut_hint_shown = False  # the max-tokens hint comes once a session: it says nothing new after

    def attach(self, session: Session, history: History | None = None) -> None:
        """Build the prompt once the session exists."""
        self.session = session

        def session_of() -> Session | None:
            return self.session

        self._prompt = PromptSession(
            input=self.input,
            output=self.output,
            history=history if history is not None else history_file(),
            auto_suggest=AutoSuggestFromHistory(),
            completer=ReplCompleter(session_of),
            complete_while_typing=False,
            lexer=ReplLexer(session_of),
            input_processors=[EscapeUnsafe()],  # a pasted U+202E is shown as \u202e, never sent raw
            bottom_toolbar=toolbar(session_of),
            style=STYLE,
            enable_history_search=False,  # Up walks history; Ctrl-R searches it
        )

    def read_line(self) -> str:
        """One line from the person (KeyboardInterrupt on Ctrl-C, EOFError on Ctrl-D)."""
        assert self._prompt is not None, "attach() first"
        line = self._prompt.prompt(PROMPT)
        self._echo("› ", line)
        return line

    def _echo(self, prompt: str, line: str) -> None:
        if self.echo:
            self.console.print(Text(prompt, style="bold cyan").append_text(render.styled(line)))

    # --- the Frontend protocol -------------------------------------------------------------------

    def live_listener(self, session: Session) -> LiveView:
        """A fresh live view for this generation."""
        self.view = LiveView(self, session)
        return self.view

    def show_samples(self, session: Session, samples: list[Sample]) -> None:
        """Finish the streamed sample and show the others, numbered, each with its footer."""
        view = self.view
        self.view = None
        numbered = len(samples) > 1 or (view is not None and view.numbered)
        started = view.started if view is not None else None
        for k, sample in enumerate(samples, start=1):
            streamed = view is not None and sample.key in view.streamed_keys
            if streamed:
                assert view is not None
                view.finish()
            else:
                self._print_sample(sample, k if numbered else None)
            ended = view.ended.get(sample.key) if view is not None else None
            seconds = ended - started if ended is not None and started is not None else None
            label = "  "
            if sample.method == "beam":
                label += f"beam {sample.index + 1} · mean log p {_mean_logp(sample):.3f} · "
            self.console.print(render.footer(len(sample.token_ids), sample.stop_reason.value, seconds, label,
                                             sample.perplexity, self._cut_hint(sample), sample.model_perplexity,
                                             self._reshaped(session, sample)))

    @staticmethod
    def _reshaped(session: Session, sample: Sample) -> str:
        """The settings that made the sample's choices differ from the model's own, in short ("" if none)."""
        settings = chain_settings(sample)
        if not reshapes(settings, session.plugins.processor_specs(), session.engine.vocab):
            return ""
        return render.shaping(settings, compact=True)

    def _cut_hint(self, sample: Sample) -> str:
        """The hint for a sample that the max-tokens cap cut mid-sentence, the first time only."""
        if (self.cut_hint_shown or sample.stop_reason != StopReason.MAX_TOKENS or sample.method == "beam"
                or not render.cut_mid_sentence(sample.words)):
            return ""
        self.cut_hint_shown = True
        return render.max_tokens_hint(sample.settings.max_tokens)

    def _print_sample(self, sample: Sample, number: int | None) -> None:
        raw = sample.settings.raw
        before = " ".join(sample.prompt_words) if raw else detokenize(sample.prompt_words)
        full = sample.raw if raw else sample.text
        line = Text()
        if number is not None:
            line.append(f"#{number} ", style="bold cyan")
        if sample.resume is not None and not full.startswith(before):
            before = ""
        by_model = self.heat == "model" and sample.model_probs is not None
        if self.heat:
            words = sample.prompt_words + sample.words
            probs = sample.model_probs if by_model and sample.model_probs is not None else sample.probs
            line.append_text(render.heat_text(words, [None] * len(sample.prompt_words) + list(probs), raw))
        else:
            line.append_text(render.styled(before, render.STYLE_PROMPT))
            line.append_text(render.styled(full[len(before):]))
        if sample.stop_reason == StopReason.STOP_TOKEN:
            line.append(" " + render.END_MARKER,
                        style=render.heat_style(sample.stop_model_prob if by_model else sample.stop_prob)
                        if self.heat else render.STYLE_END)
        self.console.print(line)

    def message(self, text: str, kind: str = "info") -> None:
        """One line: errors in red, warnings in yellow, info dim; the text itself is shown literally."""
        line = Text()
        if kind == "error":
            line.append("error: ", style="bold red")
        elif kind == "warning":
            line.append("warning: ", style="yellow")
        line.append_text(render.styled(text, "" if kind in ("error", "warning") else "dim"))
        self.console.print(line)

    def show(self, renderable: Any) -> None:
        """A rich renderable (tables for :probs, :compare, :settings, :help), made safe to print."""
        render.print_safe(self.console, renderable)

    def ask(self, question: str) -> str:
        """Ask for one line (used by :pick); Ctrl-C raises KeyboardInterrupt, Ctrl-D EOFError."""
        if self._ask is None:
            self._ask = PromptSession(input=self.input, output=self.output, history=InMemoryHistory(), style=STYLE,
                                      input_processors=[EscapeUnsafe()])
        answer = self._ask.prompt(FormattedText([("class:prompt", question)]))
        self._echo(question, answer)
        return answer


def _mean_logp(sample: Sample) -> float:
    """A beam's mean log-probability under the model (under its chain when the model's is not known)."""
    total = sample.model_logprob_sum if sample.model_logprob_sum is not None else sample.logprob_sum
    n = len(sample.token_probs)
    return total / n if n else 0.0


def banner(frontend: ReplFrontend, session: Session) -> None:
    """The first lines: which model, and how to begin."""
    info = session.engine.info
    frontend.message(f"recipe-repl · model {info.name} ({info.kind}, {info.vocab_size} words, {info.provider})")
    frontend.message("type a prompt (e.g. recipe for roast chicken), :help for commands, Ctrl-D to leave")


def run_repl(
    make_session: Callable[[ReplFrontend], Session],
    *,
    console: Console | None = None,
    input: Input | None = None,
    output: Output | None = None,
    history: History | None = None,
    echo: bool = False,
) -> int:
    """Run the REPL until Ctrl-D or :quit; return the exit status.

    `console`, `input`, `output` and `history` are for tests and recordings (pipe input, DummyOutput);
    `echo` repeats each typed line on the console.
    """
    # The console holds on to this stdout: a plugin's code runs with sys.stdout sent to stderr
    # (`hookcall.plugin_stdout`), and the REPL's own output must not follow it there.
    console = console or Console(highlight=False, file=sys.stdout)
    frontend = ReplFrontend(console, input=input, output=output, echo=echo)
    session = make_session(frontend)
    frontend.attach(session, history)
    banner(frontend, session)
    while not session.quit_requested:
        try:
            line = frontend.read_line()
        except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line
            continue
        except EOFError:  # Ctrl-D
            break
        for part in line.splitlines():  # a pasted block runs line by line, like batch input
            if part.strip() and not session.quit_requested:
                run_line(frontend, session, part)
    return 0


def run_line(frontend: ReplFrontend, session: Session, line: str) -> None:
    """Run one typed line; whatever goes wrong ends in one line and the prompt comes back."""
    try:
        session.handle_line(line)
    except UserError as exc:
        frontend.message(str(exc), "error")
    except KeyboardInterrupt:
        if frontend.view is not None:
            frontend.view.finish()
            frontend.view = None
        frontend.message("interrupted", "warning")
    except Exception as exc:  # a bug must not end a class's session; say what it was
        frontend.message(f"unexpected {type(exc).__name__}: {exc} (please report this)", "error")
