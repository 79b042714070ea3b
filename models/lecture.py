"""The lecture's published next-word tables: what its model (Epicurious, 20,111 recipes; vocabulary 10,000,
Embedding 100, LSTM 128, 25 epochs) gave after its prompts, as data, with their source.

The model card, the README and `:lecture` put these beside the current model's tables. Only the rows the
source gives are here; a table at T = 0.2 is marked `derived` when it is computed from the T = 1.0 rows by
the lecture's own rule (p ** (1 / T), normalised over the rows given). The words the source leaves out hold
the rest of the mass at T = 1.0, each at most the last row's probability, so each derived share is an upper
bound, at most `max_error` above the model's own (0.02 points for "chop 1 /", 2.7 for "roast").
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("David Foster, *Generative Deep Learning*, 2nd ed. (O'Reilly, 2023), ch. 5, \"LSTM on recipe data\"; "
          "the figures as quoted in recipe-repl issue 19")
SETTINGS = {"data": "epicurious", "vocab_size": 10_000, "seq_len": 200, "embedding_dim": 100, "units": 128,
            "optimizer": "adam", "epochs": 25, "batch_size": 32}  # the notebook's own (length 201 = seq_len + 1)


@dataclass(frozen=True)
class LectureTable:
    """The lecture model's likeliest next words after `prompt` at `temperature`, as published (or derived)."""

    prompt: str
    temperature: float
    rows: tuple[tuple[str, float], ...]  # (word, probability), likeliest first
    derived: bool = False  # computed from the T = 1.0 rows by p ** (1 / T), not printed in the source
    max_error: float = 0.0  # a derived share is at most this much above the model's own (see the module doc)


def _derive(table: LectureTable, temperature: float) -> LectureTable:
    """The same table at another temperature, by the lecture's rule, over the words the source gives."""
    powered = [(w, p ** (1 / temperature)) for w, p in table.rows]
    total = sum(p for _, p in powered)
    # the words left out: mass 1 - sum(rows), none above the last row, so at most this much after powering
    rest = (1 - sum(p for _, p in table.rows)) * table.rows[-1][1] ** (1 / temperature - 1)
    top = powered[0][1] / total
    return LectureTable(table.prompt, temperature, tuple((w, p / total) for w, p in powered), derived=True,
                        max_error=top * rest / (total + rest))


_ROAST = LectureTable("recipe for roast", 1.0,
                      (("turkey", 0.228), ("chicken", 0.194), ("beef", 0.102), ("pork", 0.100)))
_CHOP = LectureTable("recipe for roasted vegetables | chop 1 /", 1.0, (("2", 0.535), ("4", 0.298), ("3", 0.131)))

TABLES: tuple[LectureTable, ...] = (_ROAST, _derive(_ROAST, 0.2), _CHOP, _derive(_CHOP, 0.2))
PROMPTS = ("recipe for roast", "recipe for roasted vegetables | chop 1 /", "recipe for chocolate ice cream |",
           "recipe for roasted vegetables |")  # the lecture's prompts; the last two have no published table here


def table(prompt: str, temperature: float) -> LectureTable | None:
    """The lecture's table for a prompt and temperature, or None when the source gives none."""
    for t in TABLES:
        if t.prompt == prompt and t.temperature == temperature:
            return t
    return None


def at_temperature(prompt: str, temperature: float, greedy: bool = False) -> LectureTable | None:
    """The lecture's table for `prompt` at any temperature: the one given, else derived from its T = 1.0
    rows by the lecture's rule (`greedy`: the likeliest word at 100%); None when the source gives none."""
    given = None if greedy else table(prompt, temperature)
    if given is not None:
        return given
    base = table(prompt, 1.0)
    if base is None:
        return None
    if greedy:
        return LectureTable(prompt, temperature, ((base.rows[0][0], 1.0),), derived=True)
    return _derive(base, temperature)
