"""Rich renderables for the REPL and the teaching commands: safe text, probability tables, footers.

Nothing the model or the user wrote is ever read as rich markup or sent as a terminal escape:
every such string goes through `safe()` (control characters become visible escapes such as `\\x1b`)
and into a `rich.text.Text`, which rich never parses for markup. Imports rich only, never
prompt-toolkit, so batch mode can use the tables too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

from recipe_repl.base.sanitize import clean
from recipe_repl.base.settings import Settings
from recipe_repl.model.vocab import PAD_ID, UNK_TOKEN, Vocabulary
from recipe_repl.views import heat

END_MARKER = "⏹ [end]"  # the stop token, shown as a marker, never as text
STYLE_UNK = "bold magenta"
STYLE_END = "dim"
STYLE_PROMPT = "bold"
STYLE_FOOTER = "dim"
STYLE_HINT = "yellow"
STYLE_CHOSEN = "bold green"


def safe(text: str, keep: str = "") -> str:
    """`text` with every control or format character replaced by a visible escape (ESC → `\\x1b`).

    Characters in `keep` (e.g. "\\n" for already rendered lines) are left alone. The one sanitizer,
    `recipe_repl.base.sanitize.clean`, does the work for every output of the tool.
    """
    return clean(text, keep)


def print_safe(console: Console, renderable: Any) -> None:
    """Print any renderable with markup off and control characters escaped in what comes out.

    Commands' tables may hold plain strings with user text (a stop string, a path): this keeps
    `[red]` literal and ESC off the terminal whatever the renderable holds.
    """
    options = console.options.update(markup=False)
    segments = [
        seg if seg.control else Segment(safe(seg.text, keep="\n"), seg.style)
        for seg in console.render(renderable, options)
    ]
    console.print(Segments(segments))


def styled(text: str, style: str = "") -> Text:
    """Safe text with [UNK] picked out, so a reader sees where the model met a word it does not know."""
    t = Text(safe(text), style=style)
    t.highlight_words([UNK_TOKEN], STYLE_UNK)
    return t


def word_cell(vocab: Vocabulary, token_id: int) -> Text:
    """One vocabulary entry for a table cell: the stop token as the end marker, [UNK] styled."""
    if token_id == PAD_ID:
        return Text(END_MARKER, style=STYLE_END)
    return styled(vocab.word(token_id))


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of `width` cells at most, with eighth-block resolution (none for a value that is
    not a number)."""
    if not fraction == fraction or fraction in (math.inf, -math.inf):
        return ""
    eighths = max(0, min(width * 8, round(fraction * width * 8)))
    full, part = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")


def percent(p: float) -> str:
    """A probability as a short percentage ("nan" for one that is not a number)."""
    if p != p:
        return "nan"
    if p >= 0.9995 or p == 0:
        return f"{p * 100:.0f}%"
    if p < 0.001:
        return "<0.1%"
    return f"{p * 100:.1f}%"


def top_ids(probs: np.ndarray, n: int) -> list[int]:
    """The ids of the `n` most likely words with non-zero probability, most likely first (stable on ties)."""
    order = np.argsort(-probs, kind="stable")[:n]
    return [int(i) for i in order if probs[i] > 0]


def top_ids_by(probs: np.ndarray, model: np.ndarray, n: int) -> list[int]:
    """The `n` rows of a two-column table: most likely first under `probs`, ties (at T = 0, all but the
    drawn word) broken by the model's probability, so the runners-up come from the model's column."""
    order = np.lexsort((-np.asarray(model, np.float64), -np.asarray(probs, np.float64)))[:n]
    return [int(i) for i in order if probs[i] > 0 or model[i] > 0]


MODEL_LABEL = "model"
SAMPLING_LABEL = "sampling"


def prob_table(
    vocab: Vocabulary,
    probs: np.ndarray,
    n: int,
    title: str | Text | None = None,
    chosen: int | None = None,
    numbered: bool = False,
    bar_width: int = 24,
    caption: str | None = None,
    model: np.ndarray | None = None,
    mark: str = "drawn",
) -> Group:
    """The `n` most likely next words with percentages and bars (the lecture's "first tokens" figure).

    `probs` is the distribution drawn from. With `model` (the model's own distribution, when the
    settings reshape it), two labelled columns: the model's probability and the sampling one; rows
    are ranked by the sampling column, ties by the model's. Bars are proportional to the sampling
    probability. `chosen` marks the word that was chosen (`◀ {mark}`); `numbered` adds the numbers
    `:pick` answers with. Title and caption sit on their own lines so a narrow table never wraps them.
    """
    ids = top_ids(probs, n) if model is None else top_ids_by(probs, model, n)
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("#" if numbered else "", justify="right", style="cyan" if numbered else "dim")
    table.add_column("next word", no_wrap=True, max_width=28, overflow="ellipsis")
    if model is not None:
        table.add_column(MODEL_LABEL, justify="right")
    table.add_column(SAMPLING_LABEL if model is not None else "prob", justify="right")
    table.add_column("", no_wrap=True, style="blue", min_width=bar_width)

    def row(rank: str, i: int) -> None:
        p = float(probs[i])
        word = word_cell(vocab, i)
        if chosen is not None and i == chosen:
            word.append(f"  ◀ {mark}", style=STYLE_CHOSEN)
        cells: list[str | Text] = [rank, word]
        if model is not None:
            cells.append(percent(float(model[i])))
        table.add_row(*cells, percent(p), bar(p, bar_width))

    for rank, i in enumerate(ids, start=1):
        row(str(rank), i)
    if chosen is not None and chosen not in ids:
        row("…", chosen)
    return _framed(table, title, caption)


def columns_caption(settings: Settings, reshaped: bool) -> str:
    """What a probability table's columns are: the model's distribution and the sampling one, in words."""
    if not reshaped:
        return "the model's own distribution (temperature 1, no processors); these settings leave it as it is"
    return f"{MODEL_LABEL}: temperature 1, no processors · {SAMPLING_LABEL} (drawn from): {shaping(settings)}"


def _framed(table: Table, title: str | Text | None, caption: str | None) -> Group:
    parts: list[Text | Table] = []
    if title is not None:
        parts.append(title if isinstance(title, Text) else Text(safe(title), style="bold"))
    parts.append(table)
    if caption:
        parts.append(Text(safe(caption), style="dim"))
    return Group(*parts)


def compare_table(
    vocab: Vocabulary,
    columns: Sequence[tuple[float, np.ndarray]],
    n: int,
    title: str | Text | None = None,
    caption: str | None = None,
    labels: Sequence[str] | None = None,
    model: np.ndarray | None = None,
    tie_break: np.ndarray | None = None,
) -> Group:
    """Top-`n` next words at several temperatures side by side (the lecture's T = 1.0 vs 0.2 figure).

    `labels` names the columns instead of their temperatures (`:compare-models`: one model each);
    `model`, the model's own distribution, comes first as a column of its own ("model"); `tie_break`
    ranks words of equal probability in a column (at T = 0 the runners-up come from the model).
    """
    table = Table(show_edge=False, pad_edge=False)
    shown: list[tuple[str, np.ndarray]] = [(MODEL_LABEL, model)] if model is not None else []
    for k, (temperature, probs) in enumerate(columns):
        shown.append((safe(labels[k]) if labels is not None else f"T = {temperature:g}", probs))
    bar_width = max(3, 16 - 3 * len(shown))
    table.add_column("", justify="right", style="dim")
    for header, _ in shown:
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    tops = [top_ids(probs, n) if tie_break is None else top_ids_by(probs, tie_break, n) for _, probs in shown]
    for rank in range(max((len(t) for t in tops), default=0)):
        cells: list[Text | str] = [str(rank + 1)]
        for (_, probs), ids in zip(shown, tops, strict=True):
            if rank >= len(ids):
                cells.append("")
                continue
            i = ids[rank]
            p = float(probs[i])
            cell = word_cell(vocab, i)
            cell.append(f" {percent(p)} ")
            cell.append(bar(p, bar_width), style="blue")
            cells.append(cell)
        table.add_row(*cells)
    return _framed(table, title, caption)


MAX_COLUMNS = 6  # distributions side by side in :compare and :compare-models


def after_title(text: str, limit: int = 48) -> Text:
    """A table's title: "next word after “…the last `limit` characters of text”"."""
    tail = text if len(text) <= limit else "…" + text[-limit:]
    return Text("next word after “", style="bold").append(styled(tail)).append("”")


def shaping(settings: Settings, compact: bool = False) -> str:
    """The settings that change the table, in words (for captions); `compact`: the footer's short form
    ("T = 0.2, top-k 5")."""
    if compact:
        t = f"T = {settings.temperature:g}" + (" (greedy)" if settings.greedy else "")
        rest = shaping(settings).split(" · ")[1:]
        return ", ".join([t, *rest])
    parts = [f"temperature {settings.temperature:g}" + (" (greedy)" if settings.greedy else "")]
    if settings.top_k:
        parts.append(f"top-k {settings.top_k}")
    if settings.top_p < 1:
        parts.append(f"top-p {settings.top_p:g}")
    if settings.min_p > 0:
        parts.append(f"min-p {settings.min_p:g}")
    if settings.repetition_penalty != 1:
        parts.append(f"repetition penalty {settings.repetition_penalty:g}")
    if not settings.allow_unk:
        parts.append("[UNK] banned")
    parts += [f"{name} {' '.join(args)}".strip() for name, args in settings.use]
    return " · ".join(parts)


def _ppl(x: float) -> str:
    return f"{x:,.2f}" if x < 1e6 else "∞"


def footer(tokens: int, stop_reason: str, seconds: float | None = None, label: str = "",
           perplexity: float | None = None, hint: str = "", model_perplexity: float | None = None,
           reshaped: str = "") -> Text:
    """The dim line under a sample: tokens generated, words per second, perplexity, why it stopped
    (and `hint`, what to do about it).

    The perplexity is the model's own ("perplexity 9.20"); when settings reshaped the choices
    (`reshaped`, e.g. "T = 0.2"), the one of the distribution drawn from follows it ("perplexity 9.20
    (model) · 1.40 at T = 0.2"). Without the model's (not computed) the drawn one says so.
    """
    parts = [f"{tokens} token{'s' if tokens != 1 else ''}"]
    if seconds is not None and seconds > 0 and tokens:
        parts.append(f"{tokens / seconds:,.0f} words/s")
    if model_perplexity is not None and reshaped and perplexity is not None:
        parts.append(f"perplexity {_ppl(model_perplexity)} (model) · {_ppl(perplexity)} at {reshaped}")
    elif model_perplexity is not None:
        parts.append(f"perplexity {_ppl(model_perplexity)}")
    elif perplexity is not None:
        parts.append(f"perplexity {_ppl(perplexity)}" + (f" at {reshaped}" if reshaped else ""))
    parts.append(stop_reason)
    line = Text(f"{label}{' · '.join(parts)}", style=STYLE_FOOTER)
    if hint:
        line.append(f" — {hint}", style=STYLE_HINT)
    return line


SENTENCE_ENDS = (".", "!", "?")
MAX_TOKENS_LIMIT = 100_000  # `Settings.max_tokens` allows no more


def cut_mid_sentence(words: Sequence[str]) -> bool:
    """Whether a text stops inside a sentence: its last word is not a full stop, ! or ?."""
    return bool(words) and words[-1] not in SENTENCE_ENDS


def max_tokens_hint(max_tokens: int) -> str:
    """What to do when the max-tokens cap cut a sentence: raise the cap, or go on from there."""
    raised = min(2 * max_tokens, MAX_TOKENS_LIMIT)
    more = f":max {raised} raises the cap, " if raised > max_tokens else ""
    return f"the cap cut a sentence: {more}:continue goes on"


# --- heat: each word coloured by the probability it had -------------------------------------------------

# Foreground colours of middle brightness (readable on dark and light backgrounds); the two least
# likely bands are also underlined, which stays visible when NO_COLOR removes the colours.
HEAT_STYLES = ("bold red3 underline", "dark_orange3 underline", "gold3", "green4", "")


def heat_style(p: float | None) -> str:
    """The style of a word that had probability `p` (None: a prompt word, not chosen by the model)."""
    return STYLE_PROMPT if p is None else HEAT_STYLES[heat.band(p)]


def heat_text(words: Sequence[str], probs: Sequence[float | None], raw: bool = False, start: int = 0) -> Text:
    """Words joined for reading (or raw, with `word(0.42)`), each styled by its probability band.

    `start` skips the first words (already shown) but still lets them decide how the next join on.
    """
    out = Text()
    pieces = heat.pieces(words, raw=raw)
    for k in range(start, len(words)):
        p = probs[k]
        piece = pieces[k] + (f"({p:.2f})" if raw and p is not None else "")
        out.append_text(styled(piece, heat_style(p)))
    return out


def heat_legend(by: str = "model") -> Text:
    """The five bands, once, when heat is turned on; it says which probability colours the words."""
    legend = Text("heat: ", style="dim")
    for label, style in zip(heat.LABELS, HEAT_STYLES, strict=True):
        legend.append("■ " + label, style=style or "default")
        legend.append("  ")
    legend.append(f"({heat.WHICH[by]})", style="dim")
    return legend


def least_likely_table(rows: Sequence[tuple[int, str, float]]) -> Group:
    """`:score`'s least likely words (those below the median): word number, word (⏹ the stop token),
    the model's probability."""
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("word #", justify="right", style="dim")
    table.add_column("least likely words", no_wrap=True, max_width=28, overflow="ellipsis")
    table.add_column("prob", justify="right")
    for position, word, p in rows:
        cell = Text(END_MARKER, style=STYLE_END) if word == heat.STOP_WORD else styled(word, heat_style(p))
        table.add_row(str(position + 1), cell, percent(p))
    return _framed(table, None, None)


def ranking_table(rows: Sequence[tuple[int, Any]]) -> Group:
    """`:best`: samples (number, sample) ranked by the model's mean log-probability, best first; the mean
    log-probability of the distribution they were drawn from beside it."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("rank", justify="right", style="dim")
    table.add_column("#", justify="right", style="cyan")
    table.add_column("mean log p\n(model)", justify="right")
    table.add_column("perplexity\n(model)", justify="right")
    table.add_column("mean log p\n(sampling)", justify="right", style="dim")
    table.add_column("ends", style="dim")
    table.add_column("begins", no_wrap=True, max_width=40, overflow="ellipsis")
    for rank, (number, sample) in enumerate(rows, start=1):
        n = len(sample.token_probs)
        mean = sample.logprob_sum / n if n else float("-inf")
        model = sample.model_logprob_sum / n if n and sample.model_logprob_sum is not None else None
        ppl = sample.model_perplexity
        table.add_row(str(rank), str(number), "-" if model is None else f"{model:.3f}",
                      "-" if ppl is None else _ppl(ppl), f"{mean:.3f}", sample.stop_reason.value,
                      styled(sample.continuation[:60]))
    title = Text("ranked by the model's mean log-probability (temperature 1, no processors; higher is likelier)",
                 style="bold")
    return _framed(table, title, "sampling: the distribution each word was drawn from, after the settings")
