"""Scoring a given text: the probability the model gave each of its words, and the text's perplexity.

The model reads the text from a fresh state; every word after the first gets the probability of the
model's own next-word distribution (temperature 1, no processors: the model, not the sampler), and
the stop token after the last word is counted too — exactly what `recipe-repl eval` counts, so a
file's perplexity here equals eval's on the same texts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.generate.loop import PREFILL_FLOATS
from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import PAD_ID, UNK_ID


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

    def least_likely(self, n: int = 5) -> list[tuple[int, str, float]]:
        """(position, word, probability) of the `n` least likely words, least likely first."""
        scored = [(k, w, p) for k, (w, p) in enumerate(zip(self.words, self.probs, strict=True)) if p is not None]
        return sorted(scored, key=lambda t: t[2])[:n]


def score_text(engine: Engine, text: str, max_tokens: int) -> TextScore:
    """Feed `text` and collect the probability of each next word (bounded memory, any length up to the cap)."""
    vocab = engine.vocab
    ids = vocab.encode(text)
    if not ids:
        raise UserError("nothing to score: the text has no words the model can read")
    if len(ids) > max_tokens:
        raise UserError(f"the text is {len(ids):,} tokens long, over the limit of {max_tokens:,} "
                        "(--max-prompt-tokens)")
    found = next_word_probs(engine, ids)
    probs: list[float | None] = [None, *found[:-1]]
    return TextScore(text, vocab.decode_tokens(ids), ids, probs, found[-1])


def next_word_probs(engine: Engine, ids: list[int]) -> list[float]:
    """The model's probability of each of `ids[1:]` given the ids before it, then of the stop token after
    the last one (temperature 1, no processors): len(ids) numbers, in chunks of bounded memory."""
    targets = np.array(ids[1:] + [PAD_ID], dtype=np.int64)
    chunk = max(1, PREFILL_FLOATS // len(engine.vocab))
    state = engine.start(1)
    found = np.empty(len(ids), dtype=np.float64)
    for start in range(0, len(ids), chunk):
        out, state = engine.forward(np.array([ids[start:start + chunk]], dtype=np.int64), state)
        logits = np.asarray(out[0], dtype=np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        tgt = targets[start:start + len(logits)]
        found[start:start + len(logits)] = np.exp(logp[np.arange(len(logits)), tgt])
    return [float(p) for p in found]


def corpus_perplexity(scores: list[TextScore]) -> float:
    """Perplexity over several texts, every prediction weighted alike (as `recipe-repl eval` counts)."""
    n = sum(len(s.predictions) for s in scores)
    return math.exp(sum(s.nll for s in scores) / n) if n else float("nan")
