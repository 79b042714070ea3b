"""Inspection: the next-word distribution after given words, and a sample taken back to an earlier word.

What the teaching views (`:probs`, `:compare`, `:why`, `:compare-models`), the training probe and the
model card show is always one of two things, computed here once:

- the **model's** distribution: softmax of the logits at temperature 1, no processors;
- the **sampling** distribution: the `Sampler`'s chain under given settings (what a word is drawn from).

Both come together as `WordTables` (`tables_after` a list of ids, `tables_before` word N of a numbered
text). An LSTM's whole state is two vectors per row, so going back along a text costs one re-feed of
the words kept (`cut_text`): the state after them is recomputed exactly, rather than kept for every word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import Resume, Sample, StopReason, prefill
from recipe_repl.generate.numbering import NumberedText, Origin, Word
from recipe_repl.generate.sampling import ProcessorSpec, Sampler, is_greedy
from recipe_repl.model.engine import Engine
from recipe_repl.model.finite import not_finite
from recipe_repl.model.vocab import Vocabulary


def next_logits(engine: Engine, ids: Sequence[int]) -> np.ndarray:
    """Next-word logits [vocab] after feeding `ids` from a fresh state.

    Logits that are not finite numbers raise `NonFiniteLogits` naming the word they came after: every
    view built on them (`:probs`, `:why`, `:branch`, …) says so in one line instead of drawing NaN.
    """
    last, _ = prefill(engine, np.array([list(ids)], dtype=np.int64), engine.start(1))
    return finite_logits(engine, ids, last[0])


def finite_logits(engine: Engine, ids: Sequence[int], row: np.ndarray) -> np.ndarray:
    """`row`, the logits after `ids`, or `NonFiniteLogits` naming the word they came after."""
    if not np.isfinite(row).all():
        words = engine.vocab.decode_tokens(list(ids))
        raise not_finite("", words, len(words) - 1)
    return row


def model_distribution(logits: np.ndarray) -> np.ndarray:
    """The model's own next-word distribution: softmax at temperature 1, no processors (float64)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probs


def sampling_distribution(logits: np.ndarray, history: Sequence[int], settings: Settings,
                          processors: Sequence[ProcessorSpec], vocab: Vocabulary) -> np.ndarray:
    """The distribution a word is drawn from under `settings` and the processors, for one row of logits."""
    sampler = Sampler(settings, processors, vocab)
    probs: np.ndarray = sampler.distribution(np.asarray(logits)[None, :], [list(history)])[0]
    return probs


def context_ids(vocab: Vocabulary, sample: Sample) -> list[int]:
    """The ids the sample reads on from (its prompt, or everything before a continued sample)."""
    return [vocab.id_of(w) for w in sample.prompt_words]


def reshapes(settings: Settings, processors: Sequence[ProcessorSpec], vocab: Vocabulary) -> bool:
    """Whether these settings make the sampling distribution differ from the model's own (temperature
    other than 1, greedy, or any processor in the chain)."""
    return is_greedy(settings) or bool(Sampler(settings, processors, vocab).chain)


@dataclass(frozen=True)
class WordTables:
    """The distributions before one word of a text: the model's own, and the one drawn from under `settings`."""

    model: np.ndarray  # float64 [vocab]: softmax at temperature 1, no processors
    sampling: np.ndarray  # float32 [vocab]: after the settings' chain (equal to `model` when nothing reshapes)
    settings: Settings
    reshaped: bool  # whether the settings change the distribution (two columns are worth showing)


def tables_after(engine: Engine, processors: Sequence[ProcessorSpec], ids: Sequence[int],
                 settings: Settings) -> WordTables:
    """Both next-word distributions after `ids`: the model's own and the one drawn from under `settings`."""
    return tables_of(next_logits(engine, ids), ids, settings, processors, engine.vocab)


def tables_of(logits: np.ndarray, history: Sequence[int], settings: Settings, processors: Sequence[ProcessorSpec],
              vocab: Vocabulary) -> WordTables:
    """Both distributions for one row of logits (the sampling one made only when the settings reshape it)."""
    reshaped = reshapes(settings, processors, vocab)
    model = model_distribution(logits)
    sampling = (sampling_distribution(logits, history, settings, processors, vocab) if reshaped
                else model.astype(np.float32))
    return WordTables(model, sampling, settings, reshaped)


def tables_before(engine: Engine, processors: Sequence[ProcessorSpec], text: NumberedText, k: int,
                  settings: Settings) -> WordTables:
    """Both distributions the word at index `k` (0-based, k ≥ 1) of `text` was chosen from, or would have
    been under `settings`: the same words before it, the same processors."""
    return tables_after(engine, processors, text.ids(k), settings)


def cut_text(engine: Engine, text: NumberedText, keep: int, forced: Sequence[int], settings: Settings,
             rng: np.random.Generator, key: int = 0, index: int = 0, method: str = "sample") -> Sample:
    """`text` cut to its first `keep` words, then the `forced` ids fed: a sample ready for `:continue`.

    Its prompt words are the kept words before the latest sample's own; its generated words are the
    kept ones of that sample (with their probabilities).
    """
    vocab = engine.vocab
    kept = text.words[:keep]
    if any(w.is_stop for w in kept):
        raise ValueError("the stop token ends a text: it cannot be kept before more words")
    head = min(keep, text.generated_from)
    history = [w.id for w in kept] + list(forced)
    last, state = prefill(engine, np.array([history], dtype=np.int64), engine.start(1))
    words_before = [w.token for w in kept] + vocab.decode_tokens(list(forced))
    resume = Resume(state, last[0].copy(), (), history, rng, words_before)
    generated = kept[head:]
    return Sample(prompt=text.prompt, prompt_words=[w.token for w in kept[:head]],
                  token_ids=[w.id for w in generated], words=[w.token for w in generated],
                  probs=[w.prob if w.prob is not None else float("nan") for w in generated],
                  stop_reason=StopReason.INTERRUPTED, settings=settings, index=index, key=key, resume=resume,
                  method=method, rng=rng)


def forced_words(vocab: Vocabulary, forced: Sequence[int]) -> list[Word]:
    """The words `:branch` writes, as words of the new text (origin forced)."""
    return [Word(i, vocab.words[i], Origin.FORCED) for i in forced]
