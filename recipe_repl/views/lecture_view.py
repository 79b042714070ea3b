"""`:lecture`'s tables: this model's next words after one of the lecture's prompts beside the book's own.

The book's rows are words that need not be in this model's vocabulary, so its column is drawn from
(word, probability) pairs, not from a distribution over our ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from recipe_repl.model.vocab import Vocabulary
from recipe_repl.models.lecture import LectureTable
from recipe_repl.views.render import after_title, bar, percent, safe, styled, top_ids, word_cell

BAR_WIDTH = 10


def book_header(book: LectureTable | None, greedy: bool) -> str:
    """The book column's heading: its temperature, and a star when the table is derived, not printed."""
    if book is None:
        return "the lecture"
    return f"the lecture, T = {0 if greedy else book.temperature:g}" + (" *" if book.derived else "")


def lecture_table(vocab: Vocabulary, prompt: str, probs: np.ndarray, book: LectureTable | None, n: int,
                  settings_label: str, greedy: bool = False) -> Group:
    """The `n` likeliest next words of this model (`probs`, over `vocab`, under the settings `settings_label`
    names) beside the book's published rows."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("", justify="right", style="dim")
    table.add_column(f"this model, {settings_label}", no_wrap=True, overflow="ellipsis")
    table.add_column(book_header(book, greedy), no_wrap=True, overflow="ellipsis")
    ours = top_ids(probs, n)
    theirs: Sequence[tuple[str, float]] = book.rows if book is not None else ()
    for rank in range(max(len(ours), len(theirs), 1)):
        cells: list[Text | str] = [str(rank + 1)]
        if rank < len(ours):
            p = float(probs[ours[rank]])
            cells.append(word_cell(vocab, ours[rank]).append(f" {percent(p)} ").append(bar(p, BAR_WIDTH), style="blue"))
        else:
            cells.append("")
        if rank < len(theirs):
            word, p = theirs[rank]
            cells.append(styled(word).append(f" {percent(p)} ").append(bar(p, BAR_WIDTH), style="green"))
        elif rank == 0 and book is None:
            cells.append(Text("no table published", style="dim italic"))
        else:
            cells.append("")
        table.add_row(*cells)
    parts: list[Text | Table] = [after_title(prompt, limit=64), table]
    if book is not None and book.derived and len(book.rows) == 1:
        parts.append(Text("* the likeliest word of the book's T = 1.0 table", style="dim"))
    elif book is not None and book.derived:
        note = ("* derived from the book's T = 1.0 rows by its rule p^(1/T), over the words it gives: each share is an "
                f"upper bound, at most {100 * book.max_error:.2g} points above its model's own")
        parts.append(Text(safe(note), style="dim"))
    return Group(*parts)
