"""A corpus check: words in another script than the corpus's own, and recipes that open alike.

- **Script**: every word with two or more letters of a known script (Latin, Cyrillic, Greek, …) has
  the script of its first such letter; the corpus's own script is the one most of its words have
  (the "Recipe for" every loader puts in front is not counted). A recipe is *foreign* when more
  than `FOREIGN_SHARE` of its words are in another script: the 18 recipes of the English builtin
  corpus that carry Russian sentences are; a Russian recipe that names "TikTok" once is not.
  Training drops foreign recipes unless told not to (`train --no-clean`), and says so in its counts.
- **Openings**: the share of recipes whose body opens with the same five words (a template:
  "Step 1. Prepare all ingredients:" opens 13% of the builtin recipes), most common first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from recipe_repl.train.corpus import Corpus

FOREIGN_SHARE = 0.05  # a recipe with more words than this in another script is foreign
FOREIGN_REASON = "other script"  # the skip reason training reports
OPENING_WORDS = 5
SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "GEORGIAN", "HEBREW", "ARABIC", "DEVANAGARI", "THAI",
           "HANGUL", "HIRAGANA", "KATAKANA", "CJK")
_WORD = re.compile(r"\w+")
_PREFIX = "Recipe for "  # put in front of every recipe by the loaders: not the corpus's own words


def script_of(word: str) -> str | None:
    """The script of a word's first letter of a known script, when it has two such letters or more."""
    if word.isascii():  # most words: no Unicode names to look up
        return "LATIN" if sum(ch.isalpha() for ch in word) >= 2 else None
    first, letters = None, 0
    for ch in word:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "").split(" ", 1)[0]
        if name in SCRIPTS:
            first, letters = first or name, letters + 1
    return first if letters >= 2 else None


def _scripts(text: str) -> list[tuple[str, str]]:
    """(word, script) for each word of a recipe that has a script."""
    text = text[len(_PREFIX):] if text.startswith(_PREFIX) else text
    return [(w, s) for w in _WORD.findall(text) if (s := script_of(w)) is not None]


def main_script(texts: Sequence[str]) -> str | None:
    """The script most words of the corpus are written in."""
    counts = Counter(s for t in texts for _, s in _scripts(t))
    return counts.most_common(1)[0][0] if counts else None


def foreign_words(text: str, script: str | None) -> list[str]:
    """The words of a recipe in another script than `script`."""
    return [w for w, s in _scripts(text) if script is not None and s != script]


def is_foreign(text: str, script: str | None) -> bool:
    """Whether more than FOREIGN_SHARE of the recipe's words are in another script."""
    words = _scripts(text)
    other = sum(1 for _, s in words if script is not None and s != script)
    return bool(words) and other / len(words) > FOREIGN_SHARE


def opening(text: str, words: int = OPENING_WORDS) -> str:
    """The first `words` words of a recipe's body (after " | "), as written."""
    body = text.partition(" | ")[2] or text
    return " ".join(body.split()[:words])


@dataclass
class CheckReport:
    """What the check found in one corpus."""

    name: str
    recipes: int
    script: str | None
    foreign_recipes: int  # recipes training drops (more than FOREIGN_SHARE of their words in another script)
    foreign_words: Counter[str] = field(default_factory=Counter)  # every word in another script, with its count
    openings: list[tuple[str, int]] = field(default_factory=list)  # the commonest five-word openings

    @property
    def top_opening_share(self) -> float:
        return self.openings[0][1] / max(self.recipes, 1) if self.openings else 0.0


def check(corpus: Corpus, top: int = 3) -> list[CheckReport]:
    """The check of each member corpus."""
    out = []
    for member in corpus.members():
        script = main_script(member.texts)
        words: Counter[str] = Counter()
        foreign = 0
        for text in member.texts:
            words.update(foreign_words(text, script))
            foreign += is_foreign(text, script)
        openings = Counter(opening(t) for t in member.texts).most_common(top)
        out.append(CheckReport(member.name, member.used, script, foreign, words, openings))
    return out


def drop_foreign(corpus: Corpus) -> Corpus:
    """The corpus without its foreign recipes, each member on its own, counted as skipped ("other script")."""
    parts = []
    for member in corpus.members():
        script = main_script(member.texts)
        kept = [t for t in member.texts if not is_foreign(t, script)]
        skipped = member.skipped.copy()
        if len(kept) < len(member.texts):
            skipped[FOREIGN_REASON] += len(member.texts) - len(kept)
        parts.append(Corpus(member.name, kept, member.lowercase, member.read, skipped))
    if not corpus.parts:
        return parts[0]
    from recipe_repl.train.corpus import join_corpora

    return join_corpora(parts)


def format_check(reports: Sequence[CheckReport]) -> str:
    """The check as lines: the script and its strays, then the commonest openings."""
    lines = []
    for r in reports:
        strays = ", ".join(f"{w} ({n})" for w, n in r.foreign_words.most_common(6))
        lines.append(f"{r.name}: {r.recipes:,} recipes in {(r.script or 'no').lower()} script; "
                     f"{sum(r.foreign_words.values()):,} words in another script"
                     + (f" ({len(r.foreign_words):,} distinct: {strays}{', …' if len(r.foreign_words) > 6 else ''})"
                        if r.foreign_words else "")
                     + (f"; {r.foreign_recipes:,} recipes have more than {FOREIGN_SHARE:.0%} of their words so: "
                        "training drops them (train --no-clean keeps them)" if r.foreign_recipes else ""))
        for text, n in r.openings:
            lines.append(f"  {n / max(r.recipes, 1):6.1%} open with “{text}”")
    return "\n".join(lines)
