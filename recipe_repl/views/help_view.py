"""`:help`'s command list, laid out for the width it is drawn at: no word is ever cut.

Each command is its usage and a one-line help. The usage column is as wide as the longest usage
that fits in two fifths of the width; a longer usage gets a line of its own, with its help below it,
indented like the other helps. Helps wrap at word boundaries (a single word wider than the whole
line, which no built-in has, is folded rather than cut).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from recipe_repl.views.render import safe

GAP = 2  # spaces between the usage column and the help
MIN_HELP = 24  # the help column is never narrower than this (the usage column gives way)
STYLE_USAGE = "cyan"


class CommandList:
    """Rows of (usage, help) drawn in two columns, or usage above help when a usage is too wide."""

    def __init__(self, rows: Sequence[tuple[str, str]], title: str = "") -> None:
        self.rows = [(safe(usage), safe(text)) for usage, text in rows]
        self.title = safe(title)

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Text]:
        """The lines for `options.max_width` columns."""
        yield from self.lines(options.max_width)

    def lines(self, width: int) -> Iterator[Text]:
        """Every line of the list at `width` columns, none longer than it."""
        width = max(20, width)
        if self.title:
            yield Text(self.title, style="bold", overflow="fold")
        column = usage_column([u for u, _ in self.rows], width)
        indent = column + GAP
        for usage, text in self.rows:
            wrapped = _wrap(text, width - indent)
            if len(usage) <= column:
                first = Text(usage.ljust(column + GAP), style=STYLE_USAGE)
                first.append(wrapped[0] if wrapped else "")
                yield first
            else:
                for part in _wrap(usage, width):
                    yield Text(part, style=STYLE_USAGE, overflow="fold")
                if wrapped:
                    yield Text(" " * indent + wrapped[0], overflow="fold")
            for line in wrapped[1:]:
                yield Text(" " * indent + line, overflow="fold")


def usage_column(usages: Sequence[str], width: int) -> int:
    """The usage column's width: the longest usage that fits in two fifths of the line (and leaves the
    help at least MIN_HELP columns)."""
    limit = max(8, min(width * 2 // 5, width - GAP - MIN_HELP))
    fitting = [len(u) for u in usages if len(u) <= limit]
    return max(fitting, default=limit)


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` columns, broken between words only."""
    return textwrap.wrap(text, width=max(1, width), break_long_words=False, break_on_hyphens=False) or [""]
