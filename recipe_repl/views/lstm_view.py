"""Rich renderables for the views inside the LSTM: a text coloured by a signed score, gate rows, tables.

`ScoredText` colours each word by a number with the cells view's diverging palette (blue below 0,
red above, `cell_view`), leaves words without a number plain and can mark one word (the word being
explained); without colour, or with `:raw on`, it prints `word(+0.42)` instead. `GateStrip` is the
word × row strip of `:gates`: each row has its own centre and scale (a gate is coloured around 0.5,
a cell value around 0). Every word goes through `render.styled` (the one sanitizer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from recipe_repl.views import cell_view, heat, render

MARK_STYLE = "bold reverse"


def _colour(console: Console, raw: bool) -> bool:
    return not raw and console.color_system is not None and not console.no_color


def signed(value: float, digits: int = 2) -> str:
    """+0.42 / −0.42, and no "-0.00"."""
    if abs(value) < 0.5 * 10 ** -digits:
        value = 0.0
    return f"{value:+.{digits}f}".replace("-", "−")


class ScoredText:
    """Words coloured by a signed score each (None: shown plain); `mark` is the index of a word to pick out."""

    def __init__(self, words: Sequence[str], values: Sequence[float | None], scale: float,
                 mark: int | None = None, raw: bool = False) -> None:
        self.words, self.values, self.scale, self.mark, self.raw = list(words), list(values), scale, mark, raw

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        colour = _colour(console, self.raw)
        out = Text()
        for k, (piece, v) in enumerate(zip(heat.pieces(self.words, raw=not colour), self.values, strict=True)):
            word = piece.lstrip(" ")
            out.append(piece[: len(piece) - len(word)])
            if k == self.mark:
                out.append_text(render.styled(f"[{word}]" if not colour else word, MARK_STYLE))
            elif v is None:
                out.append_text(render.styled(word, "" if k < (self.mark or 0) or self.mark is None else "dim"))
            elif colour:
                out.append_text(render.styled(word, cell_view.cell_style(v, self.scale)))
            else:
                out.append_text(render.styled(f"{word}({signed(v)})"))
        yield out


def nice_scale(values: np.ndarray) -> float:
    """The largest |value| rounded up to 1, 2 or 5 × 10^k (the colour scale's end)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return cell_view.nice_scale(finite, "c") if finite.size else 1.0


class Legend:
    """The diverging scale and what each end means (in words when there is no colour)."""

    def __init__(self, scale: float, low: str, high: str, raw: bool = False) -> None:
        self.scale, self.low, self.high, self.raw = scale, low, high, raw

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        out = Text()
        if _colour(console, self.raw):
            out.append(f"{self.low} −{self.scale:g} ", style="dim")
            for k in range(-cell_view.STEPS, cell_view.STEPS + 1):
                r, g, b = cell_view.PALETTE[k + cell_view.STEPS]
                out.append("  ", style=f"on #{r:02x}{g:02x}{b:02x}")
            out.append(f" +{self.scale:g} {self.high}", style="dim")
        else:
            out.append(f"(the number after each word: below 0 {self.low}, above 0 {self.high})", style="dim")
        yield out


def prob(p: float) -> str:
    """A probability as a percentage, small ones with two significant digits (0.0041%)."""
    return render.percent(p) if p >= 0.001 or p == 0 else f"{p * 100:.2g}%"


class GateStrip:
    """Word × row: the words once per row, each coloured by that row's value at the word.

    A row is (label, values, centre, scale): the colour runs from blue at centre − scale to red at
    centre + scale. Without colour each word carries its value.
    """

    def __init__(self, words: Sequence[str], rows: Sequence[tuple[str, np.ndarray, float, float]],
                 raw: bool = False) -> None:
        self.words, self.rows, self.raw = list(words), list(rows), raw

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        label_width = max((cell_len(label) for label, *_ in self.rows), default=0) + 3
        colour = _colour(console, self.raw)
        pieces = [(" " if k else "") + render.safe(w) + ("" if colour else "(+0.00)") for k, w in enumerate(self.words)]
        for first, last in cell_view.blocks([cell_len(p) for p in pieces], max(10, options.max_width - label_width)):
            for label, values, centre, scale in self.rows:
                line = Text(f"{label:>{label_width - 3}} │ ", style="dim")
                for k in range(first, last):
                    if k > first:
                        line.append(" ")
                    v = float(values[k])
                    word = render.safe(self.words[k])
                    if colour:
                        line.append_text(render.styled(word, cell_view.cell_style(v - centre, scale)))
                    else:
                        line.append_text(render.styled(f"{word}({signed(v)})"))
                yield line
            yield Text("")


def _table(*columns: tuple[str, str]) -> Table:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for header, justify in columns:
        table.add_column(header, justify="right" if justify == "r" else "left", no_wrap=True)
    return table


def influence_table(words: Sequence[str], occlusion: np.ndarray, gradient: np.ndarray, top: int = 5) -> Table:
    """The `top` words by |occlusion| and by |gradient × input|, side by side (word numbers 1-based)."""
    table = _table(("", "r"), ("occlusion", "l"), ("word #", "r"), ("Δ log p", "r"), ("  gradient × input", "l"),
                   ("word #", "r"), ("g·x", "r"))

    def ranked(values: np.ndarray) -> list[int]:
        size = np.nan_to_num(np.abs(values), nan=-1.0)  # NaN: not measured, never ranked
        return [int(j) for j in np.lexsort((np.arange(values.size), -size))[:top] if size[j] >= 0]

    by_occ, by_grad = ranked(occlusion), ranked(gradient)
    for rank in range(max(len(by_occ), len(by_grad))):
        cells: list[Text | str] = [str(rank + 1)]
        for order, values, lead in ((by_occ, occlusion, ""), (by_grad, gradient, "  ")):
            if rank < len(order):
                j = order[rank]
                cells += [Text(lead).append_text(render.styled(words[j])), str(j + 1), signed(float(values[j]))]
            else:
                cells += ["", "", ""]
        table.add_row(*cells)
    return table


def profile_table(labels: Sequence[str], means: np.ndarray, pairs: np.ndarray, width: int = 30) -> Table:
    """Mean |influence| by distance: one bar per bucket (NaN: no pair that far apart in the text)."""
    table = _table(("words back", "r"), ("mean |g·x|", "r"), ("", "l"), ("pairs", "r"))
    top = float(np.nanmax(means)) if np.isfinite(means).any() else 1.0
    for label, mean, count in zip(labels, means, pairs, strict=True):
        if not np.isfinite(mean):
            table.add_row(label, "-", "", "0")
            continue
        table.add_row(label, f"{mean:.3f}", Text(render.bar(float(mean) / top if top > 0 else 0.0, width),
                                                 style="blue"), f"{int(count):,}")
    return table


def words_table(title: str, rows: Sequence[tuple[int, str, float, float, float]], heads: tuple[str, str]) -> Group:
    """(word #, word, p model A, p model B, Δ log p) rows under a title: `:vs-ngram`'s wins and losses."""
    table = _table(("word #", "r"), ("word", "l"), (heads[0], "r"), (heads[1], "r"), ("Δ log p", "r"))
    for number, word, pa, pb, delta in rows:
        table.add_row(str(number), render.styled(word), prob(pa), prob(pb), signed(delta))
    return Group(Text(render.safe(title), style="bold"), table)


def units_table(rows: Sequence[tuple[int, float, float, float, str]], title: str, caption: str) -> Group:
    """`:units-for`: (unit, h_k, Wout[k, word], contribution, hint) rows."""
    table = _table(("unit", "r"), ("h", "r"), ("Wout", "r"), ("h × Wout", "r"), ("  :cells find hint", "l"))
    for unit, h, w, contribution, hint in rows:
        table.add_row(str(unit), signed(h), signed(w), signed(contribution), "  " + render.safe(hint))
    return Group(Text(render.safe(title), style="bold"), table, Text(render.safe(caption), style="dim"))


def saturation_table(rows: Sequence[tuple[str, int, float, float, str]], title: str, caption: str) -> Group:
    """`:gates` without a unit: (kind, unit, share f > 0.9, share f < 0.1, hint) rows."""
    table = _table(("", "l"), ("unit", "r"), ("f > 0.9", "r"), ("f < 0.1", "r"), ("  :cells find hint", "l"))
    for kind, unit, high, low, hint in rows:
        table.add_row(kind, str(unit), f"{high:.0%}", f"{low:.0%}", "  " + render.safe(hint))
    return Group(Text(render.safe(title), style="bold"), table, Text(render.safe(caption), style="dim"))
