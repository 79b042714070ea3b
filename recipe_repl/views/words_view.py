"""Numbered words: `:words` (each word of the last text with its number and the model's probability)
and `:branch`'s new text with the branch point marked. One numbering for every view (see
`recipe_repl.generate.numbering`): word N is the N-th token of the whole text, ⏹ last."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from recipe_repl.views import heat
from recipe_repl.views.render import END_MARKER, STYLE_CHOSEN, STYLE_END, heat_style, percent, safe, styled


class Flow:
    """Pieces of text laid out left to right, a line broken only between pieces (never inside one)."""

    def __init__(self, pieces: Sequence[Text], gap: int = 2) -> None:
        self.pieces, self.gap = list(pieces), gap

    def __rich_console__(self, console: Console, options: Any) -> Any:
        """Lines of pieces, as many as fit the width (a piece wider than the line gets one to itself)."""
        width = max(1, options.max_width)
        line = Text()
        for piece in self.pieces:
            if line.cell_len and line.cell_len + self.gap + piece.cell_len > width:
                yield line
                line = Text()
            if line.cell_len:
                line.append(" " * self.gap)
            line.append_text(piece)
        if line.cell_len:
            yield line


def numbered_words(tokens: Sequence[str], model: Sequence[float | None], typed: Sequence[bool],
                   forced: Sequence[bool], title: str) -> Group:
    """`:words`: each word of a text with its number and the model's probability of it (word 1: none),
    coloured by heat band; typed words bold, words written by :branch underlined."""
    pieces = []
    for k, (token, p) in enumerate(zip(tokens, model, strict=True)):
        piece = Text(f"{k + 1} ", style="dim")
        style = STYLE_END if token == heat.STOP_WORD else heat_style(p) if p is not None else ""
        if typed[k]:
            style = (style + " bold").strip()
        if forced[k]:
            style = (style + " underline").strip()
        piece.append_text(styled(token, style))
        piece.append(f" {percent(p)}" if p is not None else " —", style="dim")
        pieces.append(piece)
    caption = ("bold: typed · underlined: written by :branch · ⏹ the stop token · "
               "the same numbers in :why N, :branch N, :back, :score and :cells")
    return Group(Text(safe(title), style="bold"), Flow(pieces), Text(caption, style="dim"))


def branch_text(tokens: Sequence[str], k: int, forced: int, raw: bool = False) -> Text:
    """`:branch`'s new text, whole, with ▶ before word k + 1 and the written words underlined."""
    words = [t for t in tokens if t != heat.STOP_WORD]
    pieces = heat.pieces(words, raw=raw)
    out = Text()
    for j, piece in enumerate(pieces):
        if j == k:
            space = piece[: len(piece) - len(piece.lstrip(" "))]
            out.append(space)
            out.append("▶", style=STYLE_CHOSEN)
            piece = piece.lstrip(" ")
        out.append_text(styled(piece, "underline" if k <= j < k + forced else ""))
    if len(words) < len(tokens):
        out.append(" " + END_MARKER, style=STYLE_END)
    out.append(f"   (▶ word {k + 1}: the branch point)", style="dim")
    return out
