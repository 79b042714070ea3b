"""recipe-repl plugin: `:ingredients` lists the ingredients the last sample mentions.

An example of the `register_commands` hook. The command reads the session's last samples
(`session.last_samples`), matches their words against the word list shipped with this package
(`ingredients.txt`), and prints one line per sample. Installed through the `recipe_repl` entry
point group (see pyproject.toml).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from recipe_repl.base.errors import UserError
from recipe_repl.plugin import hookimpl

__version__ = "0.1.0"

MAX_WORDS = 3  # the longest ingredient name, in words


@cache
def word_list() -> dict[tuple[str, ...], str]:
    """The shipped ingredients, keyed by their words: ("olive", "oil") → "olive oil"."""
    text = resources.files(__name__).joinpath("ingredients.txt").read_text(encoding="utf-8")
    names = (line.strip().lower() for line in text.splitlines())
    return {tuple(n.split()): n for n in names if n and not n.startswith("#")}


def singular_forms(word: str) -> list[str]:
    """The word and the singulars it may be the plural of (tomatoes → tomato, berries → berry)."""
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        forms.append(word[:-1])
    return forms


def find_ingredients(words: Sequence[str], known: dict[tuple[str, ...], str] | None = None) -> Counter[str]:
    """Ingredients mentioned in a list of model words, longest names first, in order of mention."""
    known = word_list() if known is None else known
    words = [w.lower() for w in words]
    found: Counter[str] = Counter()
    i = 0
    while i < len(words):
        for size in range(min(MAX_WORDS, len(words) - i), 0, -1):
            *head, last = words[i : i + size]
            match = next((known[k] for f in singular_forms(last) if (k := (*head, f)) in known), None)
            if match is not None:
                found[match] += 1
                i += size
                break
        else:
            i += 1
    return found


def describe(found: Counter[str]) -> str:
    """`chicken (2), salt, pepper` or `none that I know`."""
    parts = [f"{name} ({count})" if count > 1 else name for name, count in found.items()]
    return ", ".join(parts) or "none that I know"


def ingredients_command(session: Any, args: str) -> None:
    """`:ingredients [prompt]`: the ingredients of each of the last samples (with the prompt's too
    when asked: by default only the generated words count)."""
    mode = args.strip().lower()
    if mode not in ("", "prompt"):
        raise UserError("usage: :ingredients [prompt]")
    samples = session.last_samples
    if not samples:
        raise UserError("no sample yet: type a prompt first")
    for number, sample in enumerate(samples, start=1):
        words = (sample.prompt_words if mode == "prompt" else []) + sample.words
        label = f"sample {number}: " if len(samples) > 1 else ""
        session.say(label + describe(find_ingredients(words)))


def _complete(session: Any, text: str) -> Iterable[str]:
    return ["prompt"]


@hookimpl
def register_commands(register: Any) -> None:
    """`:ingredients`."""
    register(
        "ingredients",
        ingredients_command,
        usage=":ingredients [prompt]",
        help="list the ingredients the last sample mentions",
        details="Matches the generated words (and the prompt's with `prompt`) against "
        f"{len(word_list())} ingredient names shipped with recipe-repl-ingredients.",
        complete=_complete,
    )

