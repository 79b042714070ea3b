"""Built-in `:lecture`: the book's published next-word tables beside this model's, at the current temperature.

The book's numbers are package data (`recipe_repl.models.lecture`, with their source); this model's
column is the distribution the sampler draws from under the current settings, after the same prompt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from recipe_repl.base.errors import UsageError
from recipe_repl.generate.inspection import tables_after
from recipe_repl.models import lecture
from recipe_repl.plugin.commands import rows_option
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

LECTURE_ROWS = 5

TO_GET_THE_BOOKS = ("`make lecture-model` trains the book's exact settings on the Epicurious recipes "
                    "(`recipe-repl data epicurious` first).")


def why_they_differ(corpus: str) -> str:
    """Why the columns differ: the book's corpus against the one this model names (its metadata: untrusted)."""
    ours = f"this one was trained on {corpus}" if corpus else "this one does not say what it was trained on"
    return (f"The book's model read 20,111 Epicurious recipes; {ours}: other recipes give other words, even "
            f"where both models are good. {TO_GET_THE_BOOKS}")


def _lecture(session: Session, args: str) -> None:
    from recipe_repl.views import render
    from recipe_repl.views.lecture_view import lecture_table

    parts, rows = rows_option(args.split(), default=LECTURE_ROWS)
    if parts:
        raise UsageError(f"{' '.join(parts)!r} is not rows N")
    engine, settings = session.engine, session.settings
    label = render.shaping(settings, compact=True)
    for prompt in lecture.PROMPTS:
        ids = engine.vocab.encode(prompt)
        tables = tables_after(engine, session.plugins.processor_specs(), ids, settings)
        book = lecture.at_temperature(prompt, settings.temperature, greedy=settings.greedy)
        session.frontend.show(lecture_table(engine.vocab, prompt, tables.sampling, book, rows, label, settings.greedy))
        session.warn_unknown(prompt)
    others = render.shaping(settings).partition(" · ")[2]
    if others:
        session.say(f"this model's column also applies {others}; the book's is temperature alone")
    training = engine.info.training if isinstance(engine.info.training, dict) else {}
    corpus = training.get("corpus") or training.get("data") or ""
    session.say(why_they_differ(render.safe(corpus) if isinstance(corpus, str) else ""))
    session.say(f"source: {lecture.SOURCE}")


def _lecture_complete(session: Session, text: str) -> Iterable[str]:
    return ["rows"]


@hookimpl
def register_commands(register: Any) -> None:
    """The lecture's tables beside this model's."""
    register("lecture", _lecture, usage=":lecture [rows N]", example=":lecture",
             help="the book's next-word tables for its prompts beside this model's, at the current temperature",
             details="For each of the lecture's four prompts: the words this model gives next under the current "
                     "settings (what the sampler draws from) beside the book's published table. Where the book "
                     "prints no table at this temperature, its T = 1.0 rows are turned into one by its own rule, "
                     "p^(1/T), marked * (an upper bound on each share, over the words the book gives). Two of the "
                     f"prompts have no published table. {LECTURE_ROWS} rows of this model's unless `rows N`.",
             complete=_lecture_complete)
