"""Rich renderables for the cell views: words on a diverging background, a legend, a word × unit strip.

Each word's background says the unit's activation after the model read it: blue below 0, red
above, white around 0 (ColorBrewer's RdBu, 11 steps, readable on dark and light terminals since
the background is set). A console without colour (NO_COLOR, a pipe, batch mode's stderr) or `:raw
on` gets the numbers instead, `word(+0.42)`, so nothing is lost without colour. Every word goes
through `render.styled` (the one sanitizer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from recipe_repl.views import heat, render

# RdBu from blue (−) through white (0) to red (+); dark ends carry white text.
PALETTE = (
    (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31),
)
STEPS = len(PALETTE) // 2  # 5 steps each side of 0
Values = Sequence[float] | np.ndarray  # one activation per word


def level(value: float, scale: float) -> int:
    """−5 … 5: where `value` falls on the scale ±`scale`."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    return int(round(t * STEPS))


def cell_style(value: float, scale: float) -> str:
    """The background (and a readable foreground) for one activation."""
    k = level(value, scale)
    r, g, b = PALETTE[k + STEPS]
    return f"{'white' if abs(k) >= 4 else 'black'} on #{r:02x}{g:02x}{b:02x}"


def nice_scale(values: np.ndarray, kind: str) -> float:
    """±1 for h (tanh keeps it there); for c, the largest |c| rounded up to 1, 2 or 5 × 10^k."""
    if kind == "h":
        return 1.0
    top = float(np.abs(values).max()) if values.size else 1.0
    if top <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(top))
    for step in (1, 2, 5, 10):
        if top <= step * power:
            return float(step * power)
    return float(10 * power)


def _colour(console: Console, raw: bool) -> bool:
    return not raw and console.color_system is not None and not console.no_color


def _value(v: float) -> str:
    return f"({0.0 if abs(v) < 0.005 else v:+.2f})"  # no "-0.00"


class Activations:
    """A text with each word's background coloured by one unit's activation (or `word(+0.42)`)."""

    def __init__(self, words: Sequence[str], values: Values, scale: float, raw: bool = False) -> None:
        self.words, self.values, self.scale, self.raw = list(words), [float(v) for v in values], scale, raw

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        out = Text()
        if not _colour(console, self.raw):
            for piece, v in zip(heat.pieces(self.words, raw=True), self.values, strict=True):
                out.append_text(render.styled(piece + _value(v)))
            yield out
            return
        for piece, v in zip(heat.pieces(self.words), self.values, strict=True):
            word = piece.lstrip(" ")
            out.append(piece[: len(piece) - len(word)])
            out.append_text(render.styled(word, cell_style(v, self.scale)))
        yield out


class Legend:
    """The diverging scale, −scale … 0 … +scale (in words when there is no colour)."""

    def __init__(self, scale: float, note: str = "", raw: bool = False) -> None:
        self.scale, self.note, self.raw = scale, note, raw

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        out = Text()
        if _colour(console, self.raw):
            out.append(f"−{self.scale:g} ", style="dim")
            for k in range(-STEPS, STEPS + 1):
                r, g, b = PALETTE[k + STEPS]
                out.append("  ", style=f"on #{r:02x}{g:02x}{b:02x}")
            out.append(f" +{self.scale:g}", style="dim")
        else:
            out.append(f"(the value after each word, from −{self.scale:g} to +{self.scale:g})", style="dim")
        if self.note:
            out.append("  " + render.safe(self.note), style="dim")
        yield out


class Strip:
    """Word × unit: the same words once per unit, each coloured by that unit (wrapped to the width)."""

    def __init__(self, words: Sequence[str], rows: Sequence[tuple[str, Values, float]],
                 raw: bool = False) -> None:
        self.words, self.rows, self.raw = list(words), list(rows), raw

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        label_width = max((cell_len(label) for label, _, _ in self.rows), default=0) + 3
        colour = _colour(console, self.raw)
        pieces = [(" " if k else "") + render.safe(w) for k, w in enumerate(self.words)]
        if not colour:
            pieces = [p + "(+0.00)" for p in pieces]  # room for the numbers
        for first, last in blocks([cell_len(p) for p in pieces], max(10, options.max_width - label_width)):
            for label, values, scale in self.rows:
                line = Text(f"{label:>{label_width - 3}} │ ", style="dim")
                for k in range(first, last):
                    word = render.safe(self.words[k])
                    if k > first:
                        line.append(" ")
                    if colour:
                        line.append_text(render.styled(word, cell_style(float(values[k]), scale)))
                    else:
                        line.append_text(render.styled(word + _value(float(values[k]))))
                yield line
            yield Text("")


def blocks(widths: Sequence[int], width: int) -> Iterator[tuple[int, int]]:
    """Runs of consecutive items whose widths fit in `width` (at least one item each)."""
    first, used = 0, 0
    for k, w in enumerate(widths):
        if k > first and used + w > width:
            yield first, k
            first, used = k, 0
        used += w
    if first < len(widths):
        yield first, len(widths)


def ranking_table(rows: Sequence[tuple[int, float]], kind: str, title: str, caption: str) -> object:
    """`:cells find`: units by correlation with a feature, strongest first."""
    from rich.console import Group

    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("rank", justify="right", style="dim")
    table.add_column("unit", justify="right", style="cyan")
    table.add_column("correlation", justify="right")
    table.add_column("", no_wrap=True, min_width=20)
    for rank, (unit, r) in enumerate(rows, start=1):
        colour = "red3" if r > 0 else "blue"
        table.add_row(str(rank), str(unit), f"{r:+.3f}", Text(render.bar(abs(r), 20), style=colour))
    return Group(Text(render.safe(title), style="bold"), table, Text(render.safe(caption), style="dim"))
