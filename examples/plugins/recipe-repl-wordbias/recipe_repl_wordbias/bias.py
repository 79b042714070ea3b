"""The `banwords` and `boost` logits processors: a bias on the logits of chosen words.

A processor factory gets the settings, its `:use` arguments and the model's vocabulary, checks the
arguments (a UserError for a bad one, shown as one line), and returns the function the sampling
chain calls at every step: `(logits float64 [batch, vocab], context) -> logits`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from recipe_repl.base.errors import UserError

DEFAULT_BOOST = 2.0  # for a word given without a number
MAX_BIAS = 100.0


def word_ids(words: Sequence[str], vocab: Any) -> list[int]:
    """The vocabulary id of each word, standardized as the model sees it (`Salt` → `salt`)."""
    ids = []
    for word in words:
        pieces = vocab.prepare(word)
        if len(pieces) != 1:
            raise UserError(f"{word!r} is {len(pieces)} model words ({' '.join(pieces)}): give one at a time")
        if pieces[0] not in vocab:
            raise UserError(f"{word!r} is not in the model's vocabulary")
        ids.append(vocab.id_of(pieces[0]))
    return ids


def banwords(settings: Any, args: tuple[str, ...], vocab: Any) -> Any:
    """`:use banwords WORD [WORD ...]`: those words can never be drawn (logit −∞)."""
    if not args:
        raise UserError("usage: :use banwords WORD [WORD ...]")
    ids = np.array(sorted(set(word_ids(args, vocab))), dtype=np.intp)

    def ban(logits: np.ndarray, context: Any) -> np.ndarray:
        logits[:, ids] = -np.inf
        return logits

    return ban


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or abs(value) > MAX_BIAS:
        raise UserError(f"a bias must be a number between -{MAX_BIAS:g} and {MAX_BIAS:g}, not {text}")
    return value


def parse_boosts(args: Sequence[str]) -> list[tuple[str, float]]:
    """`chicken 2.0 salt pepper -1 oven` → chicken +2, salt −1, pepper −1, oven +2 (the default).

    A number applies to the words before it; `WORD=BIAS` names a word that looks like a number.
    """
    pending: list[str] = []
    boosts: list[tuple[str, float]] = []
    for arg in args:
        word, eq, value = arg.rpartition("=")
        if eq and word and (bias := _number(value)) is not None:
            boosts.append((word, bias))
            continue
        bias = _number(arg)
        if bias is None:
            pending.append(arg)
            continue
        if not pending:
            raise UserError(f"bias {arg} has no word before it (write WORD {arg}, or WORD={arg})")
        boosts += [(w, bias) for w in pending]
        pending = []
    boosts += [(w, DEFAULT_BOOST) for w in pending]
    if not boosts:
        raise UserError("usage: :use boost WORD [WORD ...] [BIAS] ... (e.g. :use boost chicken 2.0)")
    return boosts


def boost(settings: Any, args: tuple[str, ...], vocab: Any) -> Any:
    """`:use boost WORD... [BIAS] ...`: add BIAS to those words' logits (negative to discourage)."""
    boosts = parse_boosts(args)
    bias = np.zeros(len(vocab), dtype=np.float64)
    for token_id, (_, value) in zip(word_ids([w for w, _ in boosts], vocab), boosts, strict=True):
        bias[token_id] = value

    def add_bias(logits: np.ndarray, context: Any) -> np.ndarray:
        return logits + bias

    return add_bias
