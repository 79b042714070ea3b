"""Probability "heat": five bands for how likely each generated word was, and how to mark them in text.

Used by the REPL (`:heat on` colours words), `:save FILE.md` (per-word marks) and `:score`. Pure
Python: batch mode and `:save` need no rich.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from recipe_repl.model.vocab import STOP_WORD as STOP_WORD  # re-exported: views take the stop mark from here
from recipe_repl.model.vocab import detokenize_pieces

# Upper edges of the first four bands; the fifth holds everything from 70% up.
EDGES = (0.01, 0.10, 0.30, 0.70)
LABELS = ("<1%", "1–10%", "10–30%", "30–70%", "≥70%")
MARKS = ("¹", "²", "³", "⁴", "")  # Markdown marks; the likeliest band stays unmarked


def band(p: float) -> int:
    """0 (least likely, under 1%) … 4 (70% and more)."""
    return bisect.bisect_right(EDGES, p)


def pieces(words: Sequence[str], raw: bool = False) -> list[str]:
    """What each word adds to the shown text (raw tokens with spaces, or the readable text)."""
    if raw:
        return [(" " if k else "") + w for k, w in enumerate(words)]
    return detokenize_pieces(words)


def marked_text(words: Sequence[str], probs: Sequence[float | None], raw: bool = False) -> str:
    """Text with a band mark after each word whose probability is known (Markdown for `:save`)."""
    out = []
    for piece, p in zip(pieces(words, raw=raw), probs, strict=True):
        out.append(piece + (MARKS[band(p)] if p is not None else ""))
    return "".join(out)


WHICH = {  # what `:heat model` and `:heat sampling` colour by, for the legends
    "model": "the model's own probability of each word: temperature 1, no processors",
    "sampling": "the probability each word was drawn with, after the settings",
}


def legend_marks(by: str = "model") -> str:
    """One line that explains the marks of `marked_text`, and which probability they show."""
    return "heat: " + " · ".join(f"{m} {label}" for m, label in zip(MARKS[:4], LABELS[:4], strict=True)) + \
        f" · unmarked {LABELS[4]} ({WHICH[by]})"
