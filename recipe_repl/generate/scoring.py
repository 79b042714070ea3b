"""Scoring a given text: the probability the model gave each of its words, and the text's perplexity.

The model reads the text from a fresh state; every word after the first gets the probability of the
model's own next-word distribution (temperature 1, no processors: the model, not the sampler), and
the stop token after the last word is counted too — exactly what `recipe-repl eval` counts, so a
file's perplexity here equals eval's on the same texts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.generate.loop import PREFILL_FLOATS
from recipe_repl.model.engine import Engine
from recipe_repl.model.finite import first_bad, not_finite
from recipe_repl.model.vocab import PAD_ID, STOP_WORD, UNK_ID


@dataclass(frozen=True)
class TextScore:
    """One scored text."""

    text: str
    words: list[str]  # the model's words (unknown ones as [UNK]); the stop token is not among them
    ids: list[int]
    probs: list[float | None]  # per word: its probability given the words before (None for the first)
    stop_prob: float  # the stop token's probability after the last word

    @property
    def predictions(self) -> list[float]:
        """Every scored prediction: the words after the first, then the stop token."""
        return [p for p in self.probs if p is not None] + [self.stop_prob]

    @property
    def nll(self) -> float:
        """Total negative log-likelihood of the predictions (nats)."""
        return -sum(math.log(max(p, 1e-300)) for p in self.predictions)

    @property
    def perplexity(self) -> float:
        """exp(mean negative log-likelihood)."""
        return math.exp(self.nll / len(self.predictions))

    @property
    def unknown(self) -> int:
        """How many words the vocabulary does not know (they read as [UNK])."""
        return sum(1 for i in self.ids if i == UNK_ID)

    @property
    def perplexity_without_stop(self) -> float | None:
        """exp(mean negative log-likelihood) of the words alone, the stop token left out (None: one word)."""
        words = [p for p in self.probs if p is not None]
        if not words:
            return None
        return math.exp(-sum(math.log(max(p, 1e-300)) for p in words) / len(words))

    def least_likely(self, n: int = 5) -> list[tuple[int, str, float]]:
        """(position, word, probability) of the `n` least likely predictions, least likely first: only
        those below the median probability, the stop token (position len(words), word ⏹) included."""
        scored = [(k, w, p) for k, (w, p) in enumerate(zip(self.words, self.probs, strict=True)) if p is not None]
        scored.append((len(self.words), STOP_WORD, self.stop_prob))
        median = statistics.median(p for _, _, p in scored)
        return sorted((t for t in scored if t[2] < median), key=lambda t: t[2])[:n]

    @property
    def stop_is_least_likely(self) -> bool:
        """Whether the stop token is among the five least likely predictions."""
        return any(w == STOP_WORD and k == len(self.words) for k, w, _ in self.least_likely(5))


def score_text(engine: Engine, text: str, max_tokens: int, where: str = "in the text") -> TextScore:
    """Feed `text` and collect the probability of each next word (bounded memory, any length up to the cap).

    Logits that are not finite at some word raise `NonFiniteLogits` naming `where` and the word,
    found from the log-sum-exp each position needs anyway.
    """
    vocab = engine.vocab
    if vocab.count_tokens(text, max_tokens + 1) > max_tokens:  # counted without encoding a huge text
        raise UserError(f"the text is over the limit of {max_tokens:,} tokens (--max-prompt-tokens)")
    ids = vocab.encode(text)
    if not ids:
        raise UserError("nothing to score: the text has no words the model can read")
    found = next_word_probs(engine, ids, where)
    probs: list[float | None] = [None, *found[:-1]]
    return TextScore(text, vocab.decode_tokens(ids), ids, probs, found[-1])


def next_word_probs(engine: Engine, ids: list[int], where: str = "in the text", needed: int | None = None
                    ) -> list[float]:
    """The model's probability of each of `ids[1:]` given the ids before it, then of the stop token after
    the last one (temperature 1, no processors): len(ids) numbers, in chunks of bounded memory.

    Logits that are not finite at some word raise `NonFiniteLogits` naming `where` and the word, found
    from the log-sum-exp each position needs anyway; only the first `needed` positions (default: all)
    must be numbers, the others come back NaN when they are not."""
    needed = len(ids) if needed is None else needed
    targets = np.array(ids[1:] + [PAD_ID], dtype=np.int64)
    chunk = max(1, PREFILL_FLOATS // len(engine.vocab))
    state = engine.start(1)
    found = np.empty(len(ids), dtype=np.float64)
    for start in range(0, len(ids), chunk):
        out, state = engine.forward(np.array([ids[start:start + chunk]], dtype=np.int64), state)
        logits = np.asarray(out[0], dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # a row that is not finite is found just below
            logits -= logits.max(axis=-1, keepdims=True)
            lse = np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        bad = first_bad(lse[: max(0, needed - start), 0])  # NaN or ±inf anywhere in a row makes it NaN
        if bad is not None:
            raise not_finite(where, engine.vocab.decode_tokens(ids), start + bad)
        tgt = targets[start:start + len(logits)]
        with np.errstate(invalid="ignore"):  # the positions allowed to be NaN (past `needed`) stay NaN
            found[start:start + len(logits)] = np.exp(logits[np.arange(len(logits)), tgt] - lse[:, 0])
    return [float(p) for p in found]


def corpus_perplexity(scores: list[TextScore]) -> float:
    """Perplexity over several texts, every prediction weighted alike (as `recipe-repl eval` counts)."""
    n = sum(len(s.predictions) for s in scores)
    return math.exp(sum(s.nll for s in scores) / n) if n else float("nan")


def read_back(engine: Engine, context: Sequence[int], tokens: Sequence[int],
              stopped: bool) -> tuple[list[float], float | None]:
    """The model's probability of each of `tokens` after `context` (then of the stop token when `stopped`),
    read with one pass of the model over the text (beam search, which chooses under its own chain)."""
    ids = list(context) + list(tokens)
    found = next_word_probs(engine, ids, "in the beam", len(ids) if stopped else len(ids) - 1)  # ids[1:], stop
    start = len(context) - 1
    return found[start:start + len(tokens)], (found[-1] if stopped else None)
