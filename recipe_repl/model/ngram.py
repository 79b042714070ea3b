"""The Kneser–Ney 3-gram that `recipe-repl eval` fits, carried in the model file and read back with numpy.

`export` counts the trigrams of the training split (the very sequences `eval` fits on: each recipe
cut to seq_len + 1 words, the stop token after it, two BOS before it) and stores the counts in the
model's metadata under `contract.META_NGRAM`: JSON with the vocabulary size, the number of
trigrams and, base64 of xz, four little-endian columns (u, v, w sorted; BOS written as the
vocabulary size; counts). About 0.5 MB for the shipped model's 203,000 trigrams; the export stores
none above `BUDGET_BYTES`. From the counts alone every figure of the interpolated Kneser–Ney
model follows (continuation counts, discounts), so `TrigramModel.logprob` equals
`recipe_repl.export.kneser_ney.KneserNey3` on the same counts (a test holds them together).
"""

from __future__ import annotations

import base64
import binascii
import json
import lzma
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.base import reading
from recipe_repl.base.errors import ModelError

FORMAT = 1
BUDGET_BYTES = 4 * 2**20  # the metadata entry's size at most (the shipped model's: ~0.5 MB)
MAX_TRIGRAMS = 20_000_000  # a model file is untrusted: what it asks to decompress is bounded


def count_trigrams(sequences: Iterable[Sequence[int]], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct trigrams (u, v, w) [n, 3] sorted, BOS = vocab_size, and their counts [n]."""
    V = vocab_size
    parts = []
    for seq in sequences:
        padded = np.array([V, V, *seq], dtype=np.int64)
        if len(padded) > 2:
            parts.append(np.stack([padded[:-2], padded[1:-1], padded[2:]], axis=1))
    grams = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
    key = (grams[:, 0] * (V + 1) + grams[:, 1]) * (V + 1) + grams[:, 2]
    unique, counts = np.unique(key, return_counts=True)
    uvw = np.stack([unique // (V + 1) ** 2, unique // (V + 1) % (V + 1), unique % (V + 1)], axis=1)
    return uvw, counts


def encode(uvw: np.ndarray, counts: np.ndarray, vocab_size: int, source: str) -> str:
    """The metadata value for these counts."""
    id_type = "<u2" if vocab_size < 2**16 else "<u4"
    columns = [uvw[:, k].astype(id_type).tobytes() for k in range(3)] + [counts.astype("<u4").tobytes()]
    blob = lzma.compress(b"".join(columns), preset=9)
    return json.dumps({"format": FORMAT, "vocab_size": vocab_size, "trigrams": int(len(counts)), "ids": id_type,
                       "source": source, "xz_base64": base64.b64encode(blob).decode("ascii")})


def decode(value: str, vocab_size: int, name: str) -> TrigramModel:
    """The 3-gram from a model's metadata value (a ModelError naming `name` when it is malformed)."""
    try:
        meta = reading.parse_json(value, f"model {name}: its 3-gram counts", ModelError)  # nesting: one line
        n, id_type = int(meta["trigrams"]), str(meta["ids"])
        if meta.get("format") != FORMAT or int(meta["vocab_size"]) != vocab_size:
            raise ValueError("a format or vocabulary this version does not read")
        if id_type not in ("<u2", "<u4") or not 0 < n <= MAX_TRIGRAMS:
            raise ValueError("implausible sizes")
        width = np.dtype(id_type).itemsize
        expected = n * (3 * width + 4)
        blob = base64.b64decode(str(meta["xz_base64"]), validate=True)
        raw = lzma.LZMADecompressor().decompress(blob, max_length=expected + 1)
        if len(raw) != expected:
            raise ValueError("the counts do not fill their columns")
    except (ValueError, KeyError, TypeError, binascii.Error, lzma.LZMAError) as exc:
        raise ModelError(f"model {name}: its 3-gram counts are unreadable ({exc})") from None
    cols = [np.frombuffer(raw, id_type, n, k * n * width).astype(np.int64) for k in range(3)]
    counts = np.frombuffer(raw, "<u4", n, 3 * n * width).astype(np.float64)
    uvw = np.stack(cols, axis=1)
    if (uvw > vocab_size).any() or (uvw[:, 2] >= vocab_size).any() or (counts < 1).any():
        raise ModelError(f"model {name}: its 3-gram counts hold ids outside the vocabulary")
    return TrigramModel(uvw, counts, vocab_size, str(meta.get("source", ""))[:200])


def _discount(counts: np.ndarray) -> float:
    """D = n1 / (n1 + 2 n2) (Ney et al.), kept in (0, 1) — as `export/kneser_ney.py`."""
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    if n1 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and, for each input key, its group's index."""
    unique, index = np.unique(keys, return_inverse=True)
    return unique, index


@dataclass
class TrigramModel:
    """Interpolated Kneser–Ney over the stored counts (the formulas of `export/kneser_ney.py`)."""

    uvw: np.ndarray
    counts: np.ndarray
    vocab_size: int
    source: str = ""

    def __post_init__(self) -> None:
        V, (u, v, w), c = self.vocab_size, self.uvw.T, self.counts
        B = V + 1  # ids run to V (BOS)
        # trigram contexts (u, v): total count and number of word types
        self._ctx, ctx_index = _groups(u * B + v)
        self._ctx_total = np.bincount(ctx_index, weights=c)
        self._ctx_types = np.bincount(ctx_index).astype(np.float64)
        self._tri_key = (u * B + v) * B + w  # sorted, as written
        # bigram continuation counts N(·vw): distinct u before (v, w)
        self._bi, bi_index = _groups(v * B + w)
        self._bi_count = np.bincount(bi_index).astype(np.float64)
        bv = self._bi // B
        self._bctx, bctx_index = _groups(bv)
        self._bctx_total = np.bincount(bctx_index, weights=self._bi_count)
        self._bctx_types = np.bincount(bctx_index).astype(np.float64)
        # unigram continuation counts N(·w): distinct v before w
        uni = np.bincount(self._bi % B, minlength=V)[:V].astype(np.float64)
        self.D3, self.D2, self.D1 = _discount(c), _discount(self._bi_count), _discount(uni[uni > 0])
        total, types = uni.sum(), float((uni > 0).sum())
        p1 = np.maximum(uni - self.D1, 0.0) / total + self.D1 * types / total / V
        self.p1: np.ndarray = p1 / p1.sum()

    @staticmethod
    def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        return at, sorted_keys[at] == keys

    def logprob(self, ids: Sequence[int]) -> np.ndarray:
        """log P3(word k | the two before) for every word of `ids` after the first ([len(ids) - 1]), as
        `KneserNey3.score` counts them (two BOS before the text)."""
        V, B = self.vocab_size, self.vocab_size + 1
        padded = np.array([V, V, *ids], dtype=np.int64)
        u, v, w = padded[1:-2], padded[2:-1], padded[3:]
        p = self.p1[w]
        at, seen = self._find(self._bctx, v)  # P2(w | v)
        bi_at, bi_seen = self._find(self._bi, v * B + w)
        n_vw = np.where(bi_seen, self._bi_count[bi_at], 0.0)
        total, types = self._bctx_total[at], self._bctx_types[at]
        p2 = np.maximum(n_vw - self.D2, 0.0) / total + self.D2 * types / total * p
        p = np.where(seen, p2, p)
        at, seen = self._find(self._ctx, u * B + v)  # P3(w | u, v)
        tri_at, tri_seen = self._find(self._tri_key, (u * B + v) * B + w)
        c_uvw = np.where(tri_seen, self.counts[tri_at], 0.0)
        total, types = self._ctx_total[at], self._ctx_types[at]
        p3 = np.maximum(c_uvw - self.D3, 0.0) / total + self.D3 * types / total * p
        p = np.where(seen, p3, p)
        out: np.ndarray = np.log(np.maximum(p, 1e-300))
        return out
