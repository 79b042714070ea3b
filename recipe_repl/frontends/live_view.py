"""The REPL's live view: a generation streamed word by word as the model writes it, tables as it goes
(`:probs first|every`), words coloured by their probability (`:heat`), at most one word per interval
(`:pace`). The frontend (`repl.ReplFrontend`) makes one per generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from recipe_repl.base.settings import Settings
from recipe_repl.generate.inspection import model_distribution, reshapes
from recipe_repl.generate.loop import Request, Sample, TokenEvent
from recipe_repl.model.vocab import detokenize
from recipe_repl.session.session import Session
from recipe_repl.views import heat, render
from recipe_repl.views.wrap import StreamWrapper

if TYPE_CHECKING:
    from recipe_repl.frontends.repl import ReplFrontend

_TAIL = 48  # characters of text shown in the title of a probability table
_CONTEXT = 16  # words of text before a new word that decide how it joins on (spaces, capitals)
_GLUE = ("/", "-", "'")  # the detokenizer glues these to the next word or not, depending on it
_CLOSING = frozenset(",.;:!?)]}%")  # raw tokens kept with the word before (readable text has no space there)
_FLUSH_S = 0.03  # streamed words reach the screen at least this often


class LiveView:
    """Streams the first sample of a generation word by word; the others are shown when they finish.

    With `:probs first` a table of the first word's distribution comes before the text; with
    `:probs every` each step's table is shown (and the text when the sample ends).
    """

    def __init__(self, frontend: ReplFrontend, session: Session) -> None:
        self.frontend, self.console = frontend, frontend.console
        self.vocab = session.engine.vocab
        self.settings: Settings = session.settings
        self.specs = session.plugins.processor_specs()
        self.reshaped = reshapes(self.settings, self.specs, self.vocab)  # tables get the model's column too
        self.main: Request | None = None
        self.words: list[str] = []  # the streamed sample's words: what it reads on from (prompt or earlier
        self.shown = 0  # text), then the generated ones; `shown` of them are on the screen
        self.streaming = False
        self.streamed_keys: set[int] = set()
        self.numbered = False
        self.prompts = 0
        self.started: float | None = None
        self.ended: dict[int, float] = {}
        self.wrap = StreamWrapper(self.console.width)  # read for each generation: the terminal may have changed
        self._flushed = time.perf_counter()
        self.heat = frontend.heat  # "" (off), "model" or "sampling": which probability colours the words
        self.pacer = Pacer(frontend.pace_ms) if frontend.pace_ms else None  # `:pace MS`
        self.probs: list[float | None] = []  # per word of `words`: its probability (None before the sample)

    # --- the Listener protocol -------------------------------------------------------------------

    def on_prompt(self, request: Request, prompt_ids: Sequence[int], settings: Settings) -> None:
        """Note the first request: it is the one streamed."""
        if self.started is None:
            self.started = time.perf_counter()
        if settings is not self.settings:
            self.reshaped = reshapes(settings, self.specs, self.vocab)
        self.settings = settings
        self.prompts += 1
        if self.main is None:
            self.main = request
            resume = request.resume
            self.words = list(resume.words_before) if resume else self.vocab.decode_tokens(prompt_ids)
            self.probs = [None] * len(self.words)
            self.numbered = settings.n > 1

    def on_token(self, event: TokenEvent) -> None:
        """Show the streamed sample's word (and its table when `:probs` asks for it)."""
        if self.main is None or event.request.key != self.main.key:
            return
        if self.prompts > 1:
            self.numbered = True
        mode = self.settings.probs
        if mode == "every" or (mode == "first" and event.step == 0):
            self._table(event)
        if mode == "every":
            self.words.append(event.word)
            return
        if not self.streaming:
            self._begin()
        p = event.model_prob if self.heat == "model" and event.model_prob is not None else event.prob
        if event.word:
            self.words.append(event.word)
            self.probs.append(p)
            self._emit()
            if self.pacer is not None:  # the word on the screen now, the next one not before its time
                self._flush()
                self.pacer.wait()
        else:
            self._emit(final=True)
            self._put(" " + render.END_MARKER, render.heat_style(p) if self.heat else render.STYLE_END, False)

    def on_sample_end(self, sample: Sample) -> None:
        """Note when each sample ended (for words per second)."""
        self.ended[sample.key] = time.perf_counter()

    # --- drawing ---------------------------------------------------------------------------------

    def _table(self, event: TokenEvent) -> None:
        self.wrap.place()
        self._flush()
        if self.streaming and self.wrap.column:
            self._newline()
        words = self.words[-_CONTEXT:]
        text = " ".join(words) if self.settings.raw else detokenize(words, capitalize=False)
        if len(text) > _TAIL or len(self.words) > _CONTEXT:
            text = "…" + text[-_TAIL:]
        title = Text(f"step {event.step + 1}: next word after “", style="bold")
        title.append(render.styled(text)).append("”")
        model = model_distribution(event.logits) if self.reshaped and event.logits is not None else None
        self.console.print(render.prob_table(self.vocab, event.probs, self.settings.probs_n, title=title,
                                             chosen=event.token_id, model=model,
                                             caption=render.columns_caption(self.settings, True) if model is not None
                                             else None))
        self.wrap.column = 0

    def _text(self, words: list[str]) -> str:
        return " ".join(words) if self.settings.raw else detokenize(words)

    def _begin(self) -> None:
        self.streaming = True
        assert self.main is not None
        self.streamed_keys.add(self.main.key)
        lead = ""
        if self.numbered:
            self._put(f"#{self.main.index + 1}", "bold cyan")
            lead = " "
        self.shown = len(self.words)
        if self.main.resume is not None:
            self._put(lead + "…", render.STYLE_END)
        else:
            self.wrap.put_text(lead + self._text(self.words), render.STYLE_PROMPT)

    def _emit(self, final: bool = False) -> None:
        """Show the words not yet on screen, as the detokenizer joins them to the text before.

        Only the last `_CONTEXT` words are re-joined, so each word costs the same however long the
        text is. A trailing "/", "-" or "'" waits for the next word: it may glue to it (1/2). With
        heat on, each word is styled by the probability it had (and `word(0.42)` when raw). A piece
        with no space before it (and in raw mode a closing punctuation token) wraps with the word
        before it.
        """
        words = self.words
        if self.shown >= len(words) or not self.streaming:
            return
        raw = self.settings.raw
        if not final and not raw and words[-1] in _GLUE:
            return
        start = max(0, self.shown - _CONTEXT)
        pieces = heat.pieces(words[start:], raw=raw)
        for k in range(self.shown, len(words)):
            piece = pieces[k - start]
            glued = not piece.startswith(" ") or (raw and words[k] in _CLOSING)
            if self.heat:
                p = self.probs[k]
                self._put(piece + (f"({p:.2f})" if raw and p is not None else ""), render.heat_style(p), glued)
            else:
                self._put(piece, "", glued)
        self.shown = len(words)

    def _put(self, piece: str, style: str = "", glued: bool | None = None) -> None:
        """Add a piece to the line; the wrapper breaks lines at word boundaries (rich cannot wrap a line
        printed in parts).

        Words are printed in bursts (every `_FLUSH_S` seconds at most): one rich print per word
        would cost more than the model's step.
        """
        self.wrap.put(piece, style, glued)
        if time.perf_counter() - self._flushed > _FLUSH_S:
            self._flush()

    def _flush(self) -> None:
        """Print the words placed since the last flush."""
        ready = self.wrap.take()
        if ready:
            self.console.print(ready, end="", soft_wrap=True)
        self._flushed = time.perf_counter()
        self.wrap.resize(self.console.width)  # the terminal may have been resized

    def _newline(self) -> None:
        self.wrap.newline()
        self._flush()

    def finish(self) -> None:
        """End the streamed line."""
        self._emit(final=True)
        self.wrap.place()
        if self.wrap.column or self.streaming or self.wrap.holding:
            self._newline()
        self.streaming = False


class Pacer:
    """At most one word every `ms` milliseconds (`:pace`): `wait()` after each word sleeps until the next
    one's time. `clock` and `sleep` are the time module's unless a test gives its own."""

    def __init__(self, ms: int, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval, self.clock, self.sleep = ms / 1000, clock, sleep
        self.next: float | None = None

    def wait(self) -> None:
        """Sleep until `interval` has passed since the last word (not at all before the first)."""
        now = self.clock()
        if self.next is not None and self.next > now:
            self.sleep(self.next - now)
            now = self.next
        self.next = now + self.interval
