"""Text → token ids, exactly as the lecture: pad punctuation, TextVectorization(standardize='lower').

Also the seeded train/validation split and the batching (length buckets or the lecture's fixed length)
with the per-position loss weights of the masked loss.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recipe_repl.model.vocab import pad_punctuation

if TYPE_CHECKING:
    from recipe_repl.train.corpus import Corpus


def split_texts(texts: Sequence[str], val_split: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded random split into (train, validation); the same seed always gives the same split."""
    n = len(texts)
    n_val = int(round(n * val_split)) if val_split > 0 else 0
    if val_split > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(order[:n_val].tolist())
    train = [t for i, t in enumerate(texts) if i not in val_idx]
    val = [texts[i] for i in sorted(val_idx)]
    return train, val


@dataclass
class Split:
    """A corpus split into training and validation recipes, each member corpus on its own."""

    train: list[str]
    val: list[str]
    per_corpus: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # name → (train, val)

    def counts(self) -> str:
        """'4337 train / 482 validation recipes', per corpus when there are several."""
        if len(self.per_corpus) <= 1:
            return f"{len(self.train)} train / {len(self.val)} validation recipes"
        return "; ".join(f"{name}: {len(t)} train / {len(v)} validation" for name, (t, v) in self.per_corpus.items())


def split_corpus(corpus: Corpus, val_split: float, seed: int) -> Split:
    """Split every member corpus with the same seed, so adding a corpus never changes another's split."""
    per = {m.name: split_texts(m.texts, val_split, seed) for m in corpus.members()}
    return Split([t for tr, _ in per.values() for t in tr], [t for _, va in per.values() for t in va], per)


def load_split(spec: str, val_split: float, seed: int, clean: bool = False) -> tuple[Corpus, Split]:
    """Load a corpus spec (without its foreign recipes when `clean`) and split it as training did
    (training, export, eval and the model card use this)."""
    from recipe_repl.train.corpus import load_corpus
    from recipe_repl.train.corpus_check import drop_foreign

    corpus = load_corpus(spec)
    if clean:
        corpus = drop_foreign(corpus)
    return corpus, split_corpus(corpus, val_split, seed)


def prepare(text: str, lowercase: str = "ascii") -> str:
    """The string handed to TextVectorization: punctuation padded; unicode-lowered first if asked.

    TextVectorization's own 'lower' (tf.strings.lower) only lowers ASCII, so for `lowercase='unicode'`
    (e.g. Russian) we lower in Python before it; `recipe_repl.model.vocab.Vocabulary` does the same at run time.
    """
    text = pad_punctuation(text)
    return text.lower() if lowercase == "unicode" else text


def make_vectorizer(vocab_size: int, seq_len: int, vocabulary: Sequence[str] | None = None) -> Any:
    """The lecture's layer: lower-case, whitespace split, `seq_len + 1` ids per text (0-padded)."""
    from keras import layers

    layer = layers.TextVectorization(
        standardize="lower", max_tokens=vocab_size, output_mode="int", output_sequence_length=seq_len + 1
    )
    if vocabulary is not None:
        words = list(vocabulary)
        if words[:2] == ["", "[UNK]"]:
            words = words[2:]
        layer.set_vocabulary(words)
    return layer


def adapt_vectorizer(texts: Sequence[str], vocab_size: int, seq_len: int, lowercase: str = "ascii") -> Any:
    """Adapt a fresh vectorizer on (prepared) texts; returns the layer."""
    import tensorflow as tf

    layer = make_vectorizer(vocab_size, seq_len)
    ds = tf.data.Dataset.from_tensor_slices([prepare(t, lowercase) for t in texts]).batch(256)
    layer.adapt(ds)
    return layer


def vectorize(layer: Any, texts: Sequence[str], lowercase: str = "ascii") -> np.ndarray:
    """Token ids, int32 [n, seq_len + 1]."""
    if not texts:
        return np.zeros((0, 1), np.int32)
    out = []
    prepared = [prepare(t, lowercase) for t in texts]
    for i in range(0, len(prepared), 1024):
        out.append(np.asarray(layer(prepared[i : i + 1024]), dtype=np.int32))
    return np.concatenate(out)


def loss_weights(ids: np.ndarray, mask: bool) -> np.ndarray:
    """Per-target weights for ids [n, L]: targets are ids[:, 1:].

    Masked: a target counts up to and including the first stop token (0) after the text; later
    padding does not. Unmasked (the lecture): every position counts.
    """
    n, L = ids.shape
    if not mask:
        return np.ones((n, L - 1), np.float32)
    lengths = (ids != 0).sum(axis=1)  # ids are >= 1 inside a text, so this is the text length
    t = np.arange(L - 1)[None, :]
    weights: np.ndarray = (t < lengths[:, None]).astype(np.float32)
    return weights


@dataclass
class Batch:
    x: np.ndarray  # int32 [b, t] inputs
    y: np.ndarray  # int32 [b, t] targets
    w: np.ndarray  # float32 [b, t] loss weights

    @property
    def real_tokens(self) -> int:
        """Targets that are not padding (the text and its first stop token)."""
        return int((self.w > 0).sum()) if self.w.any() else 0


def fixed_batches(ids: np.ndarray, batch_size: int, mask: bool, shuffle_seed: int | None) -> list[Batch]:
    """The lecture's pipeline: every batch is seq_len long, shuffled when a seed is given."""
    order = np.arange(len(ids))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(ids))
    w = loss_weights(ids, mask)
    batches = []
    for i in range(0, len(ids), batch_size):
        idx = order[i : i + batch_size]
        batches.append(Batch(ids[idx, :-1], ids[idx, 1:], w[idx]))
    return batches


def bucketed_batches(
    ids: np.ndarray, batch_size: int, shuffle_seed: int | None, pool: int = 64, round_to: int = 8
) -> list[Batch]:
    """Length bucketing: recipes of similar length share a batch, trimmed to the longest one.

    Like `tf.data.experimental.bucket_by_sequence_length` with buckets chosen per pool: shuffle, cut
    into pools of `pool` batches, sort each pool by length, batch it, shuffle the batch order. Each
    batch is cut to its longest text plus the stop target, rounded up to `round_to`. Masked loss only.
    """
    n, L = ids.shape
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    order = rng.permutation(n) if rng is not None else np.arange(n)
    lengths = (ids != 0).sum(axis=1)
    w_all = loss_weights(ids, mask=True)
    batches: list[Batch] = []
    step = batch_size * pool
    for p in range(0, n, step):
        chunk = order[p : p + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        for i in range(0, len(chunk), batch_size):
            idx = chunk[i : i + batch_size]
            t = int(min(L - 1, max(1, -(-int(lengths[idx].max()) // round_to) * round_to)))
            batches.append(Batch(ids[idx, :t], ids[idx, 1 : t + 1], w_all[idx, :t]))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def drop_words(batches: list[Batch], rate: float, separator: int, seed: int) -> list[Batch]:
    """Word dropout on the inputs (Bowman et al. 2016): each input word of a body (after the first
    `separator`, the title's "|") becomes [UNK] with probability `rate`; titles and targets stay.

    A model that cannot always trust the words just before a position learns to lean on what it read
    longer ago — the title. Training batches only: validation, export and generation read every word.
    """
    if rate <= 0:
        return batches
    rng = np.random.default_rng(seed)
    out = []
    for b in batches:
        is_sep = b.x == separator
        after = np.cumsum(is_sep, axis=1) > 0  # at or after the first separator
        body = after & ~is_sep & (b.x != 0)
        x = np.where(body & (rng.random(b.x.shape) < rate), np.int32(1), b.x).astype(b.x.dtype)
        out.append(Batch(x, b.y, b.w))
    return out


def iterate(batches: list[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for b in batches:
        yield b.x, b.y, b.w
