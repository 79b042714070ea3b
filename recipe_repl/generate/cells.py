"""Inside the LSTM: the hidden state h and memory cell c after every word, and units that follow a feature.

A stateful model's step returns only the *last* (h, c), so a text is stepped one word at a time
through `engine.forward` and the state kept after each word: `trace` does that for many texts at
once (rows of a batch; a row's state never depends on another row, and the padding after a short
text comes after the positions kept). What `:cells` shows is exactly that state.

A *feature* is a number per word of a text (1.0 inside parentheses, the count of words since the last
full stop, …); `rank_units` orders the units by the Pearson correlation of their activation with
it, over every word of every text (Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding
Recurrent Networks", 2015). Plugins add features through the `register_cell_features` hook.

The correlation streams: `trace_chunks` steps `MAX_ROWS` texts at a time and `Correlation` keeps
running sums (count, means, sums of squares and of products, merged text by text as Chan, Golub and
LeVeque's pairwise update does), so memory holds one chunk of states whatever the number of texts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.base.errors import BadValue, UserError
from recipe_repl.model.engine import Engine, RecurrentState
from recipe_repl.model.vocab import PAD_ID

KINDS = ("h", "c")
KIND_NAMES = {"h": "hidden state h", "c": "memory cell c"}
MAX_ROWS = 64  # texts stepped together: a batch of [rows, units] states per word
MAX_TEXT_WORDS = 400  # words of one text used by `:cells find` (the state after 400 words says enough)

# A feature maps the words of one text (as the model reads them) to one number per word.
Feature = Callable[[Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class Trace:
    """The LSTM state after each word of one text: `h` and `c` are [words, units]."""

    words: list[str]
    h: np.ndarray
    c: np.ndarray

    def values(self, kind: str) -> np.ndarray:
        """`h` or `c` [words, units]."""
        return self.h if kind == "h" else self.c

    @property
    def units(self) -> int:
        """Units of the LSTM layer."""
        return int(self.h.shape[1])


def state_indices(engine: Engine) -> tuple[int, int]:
    """Where h and c of the last LSTM layer sit among the state's arrays.

    The contract names state inputs `h0`, `c0` (layer 0) and `h0_k`, `c0_k` (layer k); an engine
    that does not say (a plugin's) is taken to carry (h, c) in that order. A stateless model gets
    the one clear error every cell view gives.
    """
    if not isinstance(engine.start(1), RecurrentState):
        raise UserError(f"the cell views need a stateful model, one that carries its LSTM state (h, c) from word "
                        f"to word: {engine.info.name} is {engine.info.kind} (it re-reads the text at every step)")
    roles = getattr(engine, "roles", None)
    names = list(getattr(roles, "state_inputs", ()) or ["h0", "c0"])

    def layer(name: str) -> int:
        match = re.fullmatch(r"[hc]0(?:_(\d+))?", name)
        return int(match.group(1) or 0) if match else -1

    top = max((layer(n) for n in names), default=-1)
    try:
        suffix = f"_{top}" if top > 0 else ""
        return names.index(f"h0{suffix}"), names.index(f"c0{suffix}")
    except ValueError:
        if len(names) == 2:
            return 0, 1
        raise UserError(f"{engine.info.name} carries a state the cell views cannot read "
                        f"({', '.join(names)}: no h0/c0 pair)") from None


def trace(engine: Engine, texts: Sequence[Sequence[int]]) -> list[Trace]:
    """Step every text (token ids) one word at a time; the state after each word, per text.

    Texts are fed `MAX_ROWS` at a time, each row padded at its end with the stop token after its
    own words: padding after a word never changes the state at that word.
    """
    return [t for chunk in trace_chunks(engine, texts) for t in chunk]


def padded_chunks(texts: Sequence[Sequence[int]]) -> Iterator[tuple[list[list[int]], np.ndarray]]:
    """`MAX_ROWS` texts at a time, with their ids as one [rows, longest] array, each row padded at its end
    with the stop token (padding after a word never changes the state at that word)."""
    for start in range(0, len(texts), MAX_ROWS):
        chunk = [list(t) for t in texts[start:start + MAX_ROWS]]
        tokens = np.full((len(chunk), max((len(t) for t in chunk), default=0)), PAD_ID, dtype=np.int64)
        for r, ids in enumerate(chunk):
            tokens[r, :len(ids)] = ids
        yield chunk, tokens


def trace_chunks(engine: Engine, texts: Sequence[Sequence[int]]) -> Iterator[list[Trace]]:
    """`trace`, `MAX_ROWS` texts at a time: memory holds one chunk of states, not every text's."""
    hi, ci = state_indices(engine)
    vocab = engine.vocab
    for chunk, tokens in padded_chunks(texts):
        longest = tokens.shape[1]
        state = engine.start(len(chunk))
        hs: list[np.ndarray] = []
        cs: list[np.ndarray] = []
        for t in range(longest):
            _, state = engine.forward(tokens[:, t:t + 1], state)
            assert isinstance(state, RecurrentState)
            hs.append(np.asarray(state.arrays[hi], dtype=np.float32).reshape(len(chunk), -1))
            cs.append(np.asarray(state.arrays[ci], dtype=np.float32).reshape(len(chunk), -1))
        h = np.stack(hs, axis=1) if hs else np.zeros((len(chunk), 0, 0), np.float32)
        c = np.stack(cs, axis=1) if cs else np.zeros((len(chunk), 0, 0), np.float32)
        del hs, cs
        yield [Trace([vocab.words[i] for i in ids], h[r, :len(ids)].copy(), c[r, :len(ids)].copy())
               for r, ids in enumerate(chunk)]


def check_unit(unit: int, units: int) -> int:
    """`unit` when the layer has it, else a UserError naming the valid range."""
    if not 0 <= unit < units:
        raise BadValue(f"no unit {unit}: this model's LSTM has {units} units, numbered 0 to {units - 1}",
                       example=f":cells {min(17, units - 1)}")
    return unit


class Correlation:
    """Pearson correlation of every unit's activation with a feature, from running sums over texts added one
    at a time (`add`): nothing of the size of all texts is kept.

    Each text's means, sums of squared deviations and of co-deviations are merged into the totals with
    the pairwise update of Chan, Golub & LeVeque (1979), in float64: the same figures as numpy's
    `corrcoef` over every word at once, without the cancellation a plain sum of squares suffers.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean_f = 0.0
        self.m2_f = 0.0
        self.mean_a: np.ndarray | None = None
        self.m2_a: np.ndarray | None = None
        self.c_af: np.ndarray | None = None
        self.low, self.high = math.inf, -math.inf  # the feature's range: constant means no correlation

    def add(self, acts: np.ndarray, feature: np.ndarray) -> None:
        """One text: activations [words, units] and the feature's value at each word [words]."""
        nb = int(feature.shape[0])
        if nb == 0:
            return
        a = np.asarray(acts, dtype=np.float64)
        f = np.asarray(feature, dtype=np.float64)
        self.low, self.high = min(self.low, float(f.min())), max(self.high, float(f.max()))
        ma, mf = a.mean(axis=0), float(f.mean())
        da, df = a - ma, f - mf
        m2a, m2f, caf = np.einsum("ij,ij->j", da, da), float(df @ df), df @ da
        if self.mean_a is None or self.m2_a is None or self.c_af is None:
            self.n, self.mean_a, self.mean_f, self.m2_a, self.m2_f, self.c_af = nb, ma, mf, m2a, m2f, caf
            return
        n = self.n + nb
        w = self.n * nb / n
        delta_a, delta_f = ma - self.mean_a, mf - self.mean_f
        self.m2_a += m2a + delta_a * delta_a * w
        self.m2_f += m2f + delta_f * delta_f * w
        self.c_af += caf + delta_a * delta_f * w
        self.mean_a += delta_a * (nb / n)
        self.mean_f += delta_f * (nb / n)
        self.n = n

    def result(self) -> np.ndarray:
        """r per unit; a unit that never moves correlates 0. A UserError when the feature never changes."""
        if self.n < 2 or self.m2_a is None or self.c_af is None or not self.low < self.high:
            raise UserError("the feature has the same value at every word of these texts: nothing to correlate "
                            "with (try other texts)")
        denom = np.sqrt(self.m2_a * self.m2_f)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.c_af / denom
        result: np.ndarray = np.where(denom > 0, r, 0.0)
        return result


def correlations(traces: Sequence[Trace], values: Sequence[np.ndarray], kind: str) -> np.ndarray:
    """Pearson correlation of each unit's activation with the feature `values` (one array per trace).

    Over every word of every text; a unit that never moves correlates 0. A feature that never
    changes has no correlation with anything: a UserError says so.
    """
    running = Correlation()
    for t, v in zip(traces, values, strict=True):
        running.add(t.values(kind), np.asarray(v, dtype=np.float64))
    return running.result()


def rank_units(r: np.ndarray, top: int = 10) -> list[tuple[int, float]]:
    """The `top` units with the strongest correlation (either sign), strongest first; ties by unit number."""
    order = np.lexsort((np.arange(r.size), -np.abs(r)))[:top]
    return [(int(u), float(r[u])) for u in order]


def most_changed(trace_: Trace, kind: str, top: int = 5) -> list[int]:
    """The `top` units whose activation moved most over the text (sum of |change| from word to word)."""
    values = trace_.values(kind).astype(np.float64)
    moved = np.abs(np.diff(values, axis=0)).sum(axis=0) if len(values) > 1 else np.abs(values).sum(axis=0)
    order = np.lexsort((np.arange(moved.size), -moved))[:top]
    return [int(u) for u in order]


# --- built-in features -----------------------------------------------------------------------------


def _is_number(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def paren(words: Sequence[str]) -> list[float]:
    """1 inside parentheses: from "(" (the model has read it) up to the word before ")"."""
    depth, out = 0, []
    for w in words:
        if w == "(":
            depth += 1
        elif w == ")":
            depth = max(0, depth - 1)
        out.append(1.0 if depth else 0.0)
    return out


def step(words: Sequence[str]) -> list[float]:
    """Words since the directions began: since "|" (title | steps) or a word "step"; 0 before."""
    count, started, out = 0, False, []
    for w in words:
        if w in ("|", "step"):
            count, started = 0, True
        elif started:
            count += 1
        out.append(float(count))
    return out


def number(words: Sequence[str]) -> list[float]:
    """1 on a word with a digit in it (1, 350, 2-inch)."""
    return [1.0 if _is_number(w) else 0.0 for w in words]


def sentence(words: Sequence[str]) -> list[float]:
    """Position in the sentence: words since the last ".", "!", "?" or "|" (0 on those marks)."""
    count, out = 0, []
    for w in words:
        count = 0 if w in (".", "!", "?", "|") else count + 1
        out.append(float(count))
    return out


def quantity(words: Sequence[str]) -> list[float]:
    """1 while a quantity is being read: a number and what continues it (1 / 2, 8 - ounce) until its unit."""
    out: list[float] = []
    inside = False
    for k, w in enumerate(words):
        if _is_number(w):
            inside = True
        elif inside and w in ("/", "-", ".", "to", "or") and k + 1 < len(words) and _is_number(words[k + 1]):
            inside = True  # 1 / 2, 2 - 3, 1 . 5, 2 to 3: the quantity goes on
        else:
            inside = False
        out.append(1.0 if inside else 0.0)
    return out


BUILTIN_FEATURES: dict[str, tuple[Feature, str]] = {
    "paren": (paren, "inside parentheses"),
    "step": (step, 'words since the directions began ("|") or since "step"'),
    "number": (number, "a word with a digit"),
    "sentence": (sentence, 'position in the sentence (words since the last ".")'),
    "quantity": (quantity, "a quantity being read: after a number, before its unit"),
}


def feature_values(name: str, feature: Feature, words: Sequence[str]) -> np.ndarray:
    """A feature's numbers for one text, checked: one finite number per word, else a UserError."""
    try:
        values = np.asarray(list(feature(list(words))), dtype=np.float64)
    except (UserError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - a plugin's feature: its bug (even SystemExit) is one line
        raise UserError(f"feature {name} failed: {type(exc).__name__}: {exc}") from None
    if values.shape != (len(words),):
        raise UserError(f"feature {name} gave {values.size} values for {len(words)} words (one per word is needed)")
    if not np.isfinite(values).all():
        raise UserError(f"feature {name} gave a value that is not a finite number")
    return values
