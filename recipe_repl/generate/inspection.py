"""Inspection: the next-word distribution after given words, and a sample taken back to an earlier word.

What the teaching views (`:probs`, `:compare`, `:why`, `:compare-models`), the training probe and the
model card show is always one of two things, computed here once:

- the **model's** distribution: softmax of the logits at temperature 1, no processors;
- the **sampling** distribution: the `Sampler`'s chain under given settings (what a word is drawn from).

An LSTM's whole state is two vectors per row, so going back along a sample costs one re-feed of the
words kept (`rewind`): the state after them is recomputed exactly, rather than kept for every word.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recipe_repl.base.settings import Settings
from recipe_repl.generate.beam import search_settings
from recipe_repl.generate.loop import Resume, Sample, StopReason, prefill
from recipe_repl.generate.sampling import ProcessorSpec, Sampler, row_rng
from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import Vocabulary


def next_logits(engine: Engine, ids: Sequence[int]) -> np.ndarray:
    """Next-word logits [vocab] after feeding `ids` from a fresh state."""
    last, _ = prefill(engine, np.array([list(ids)], dtype=np.int64), engine.start(1))
    row: np.ndarray = last[0]
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


def chain_settings(sample: Sample) -> Settings:
    """The settings a sample's choices were made under (a beam's are `beam.search_settings`)."""
    return search_settings(sample.settings) if sample.method == "beam" else sample.settings


def context_ids(vocab: Vocabulary, sample: Sample) -> list[int]:
    """The ids the sample reads on from (its prompt, or everything before a continued sample)."""
    return [vocab.id_of(w) for w in sample.prompt_words]


def distribution_at(engine: Engine, processors: Sequence[ProcessorSpec], sample: Sample, k: int) -> np.ndarray:
    """The distribution the sample's k-th choice (0-based) was made from: same words before it, same
    settings and processors."""
    ids = context_ids(engine.vocab, sample) + sample.token_ids[:k]
    return sampling_distribution(next_logits(engine, ids), ids, chain_settings(sample), processors, engine.vocab)


def rewind(engine: Engine, sample: Sample, keep: int, forced: list[int] | None = None) -> Sample:
    """The sample cut to its first `keep` words (then `forced` words fed), ready for :continue."""
    vocab = engine.vocab
    kept = sample.token_ids[:keep]
    history = context_ids(vocab, sample) + kept + (forced or [])
    last, state = prefill(engine, np.array([history], dtype=np.int64), engine.start(1))
    rng = sample.rng if sample.rng is not None else row_rng(sample.settings.seed, sample.key)
    words_before = sample.prompt_words + vocab.decode_tokens(kept) + vocab.decode_tokens(forced or [])
    resume = Resume(state, last[0].copy(), (), history, rng, words_before)
    return Sample(prompt=sample.prompt, prompt_words=sample.prompt_words, token_ids=kept,
                  words=vocab.decode_tokens(kept), probs=sample.probs[:keep], stop_reason=StopReason.INTERRUPTED,
                  settings=sample.settings, index=sample.index, key=sample.key, resume=resume,
                  method=sample.method, rng=rng)
