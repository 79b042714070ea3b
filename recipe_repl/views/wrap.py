"""Word wrapping for the REPL's streamed line: words arrive one at a time, punctuation stays with its word.

A terminal wraps a long line wherever the width runs out, and a streamed line cannot be wrapped by
rich (it is printed in parts). So the REPL wraps it itself, piece by piece, as the detokenizer gives
them: a word with the space before it (" stir"), or a piece glued to the one before it (",", ".",
"/2"). A glued piece may still follow a word that is already at the end of the line, so each word
is held back until the next word begins; then it is placed with what was glued to it, on this line
or, if the whole of it does not fit, at the start of the next. A piece with no space before it never
starts a line, and no line is longer than the width (only a single word longer than the line is cut).
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from recipe_repl.views import render

MIN_WIDTH = 20  # narrower terminals still get words, one or two a line


class StreamWrapper:
    """Collects styled pieces into wrapped, not yet printed text (`take()` hands it over)."""

    def __init__(self, width: int) -> None:
        self.width = MIN_WIDTH
        self.resize(width)
        self.column = 0  # cells on the current line, the held word not counted
        self._held: list[tuple[str, str]] = []  # the last word and the pieces glued to it
        self._ready = Text()  # placed, not yet printed
        self._run, self._run_style = "", ""  # placed text of one style, joined before it goes into `_ready`

    def resize(self, width: int) -> None:
        """Wrap at a new width from the next word on (the terminal was resized)."""
        self.width = max(MIN_WIDTH, width)

    def put(self, piece: str, style: str = "", glued: bool | None = None) -> None:
        """Add one piece; `glued` (default: it does not start with a space) keeps it with the word before."""
        if not piece:
            return
        if glued is None:
            glued = not piece[0].isspace()
        if not glued:
            self.place()  # a new word begins: the one before is complete
        self._held.append((piece, style))

    def put_text(self, text: str, style: str = "") -> None:
        """Add already joined text (a prompt): it breaks only at its spaces."""
        for piece in split_words(text):
            self.put(piece, style)

    def place(self) -> None:
        """Put the held word and what is glued to it on the line (or the next one, if it does not fit)."""
        held, self._held = self._held, []
        if not held:
            return
        if self.column and self.column + sum(cell_len(p) for p, _ in held) > self.width:
            self.newline()
            held[0] = (held[0][0].lstrip(" "), held[0][1])
        for piece, style in held:
            self._add(piece, style)

    def _add(self, piece: str, style: str) -> None:
        size = cell_len(piece)
        if self.column + size <= self.width:
            self._extend(piece, style)
            self.column += size
            return
        # A word longer than the whole line: cut it at the line's end, as the terminal would.
        for ch in piece:
            if self.column + cell_len(ch) > self.width:
                self.newline()
            self._extend(ch, style)
            self.column += cell_len(ch)

    def _extend(self, text: str, style: str) -> None:
        # Words of one style make one span: the terminal gets one style change, not one per word.
        if style != self._run_style:
            self._end_run()
        self._run += text
        self._run_style = style

    def _end_run(self) -> None:
        if self._run:
            self._ready.append_text(render.styled(self._run, self._run_style))
        self._run = ""

    def newline(self) -> None:
        """End the current line."""
        self._end_run()
        self._ready.append("\n")
        self.column = 0

    def take(self) -> Text:
        """The text placed since the last call (the held word stays until it is placed)."""
        self._end_run()
        ready, self._ready = self._ready, Text()
        return ready

    @property
    def holding(self) -> bool:
        """Whether a word is held back or placed text waits to be taken."""
        return bool(self._held) or bool(self._ready) or bool(self._run)


def split_words(text: str) -> list[str]:
    """Split text into wrap units: each word with the spaces before it."""
    out: list[str] = []
    current = ""
    for ch in text:
        if ch == " " and current.strip():
            out.append(current)
            current = ""
        current += ch
    if current:
        out.append(current)
    return out
