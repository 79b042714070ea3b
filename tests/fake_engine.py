"""A tiny scripted language model behind the Engine interface (STYLE lesson 4).

Its next-word logits depend only on the last fed token, through a fixed table, and its "state" is
that last token; it counts what it is fed so tests can check the loop's O(1)-per-token promise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recipe_repl.model.engine import ModelInfo, RecurrentState, State
from recipe_repl.model.vocab import Vocabulary


class FakeEngine:
    """`table[last_token]` are the logits of the next word."""

    def __init__(self, words: list[str], table: np.ndarray) -> None:
        self.vocab = Vocabulary.from_list(words)
        self.table = np.asarray(table, dtype=np.float32)
        self.info = ModelInfo(path="fake.onnx", kind="stateful", provider="cpu", vocab_size=len(words))
        self.fed_tokens = 0
        self.calls = 0

    def start(self, batch_size: int) -> State:
        return RecurrentState((np.full((batch_size, 1), -1, dtype=np.int64),))

    def concat(self, states: Sequence[State]) -> State:
        return RecurrentState((np.concatenate([s.arrays[0] for s in states]),))  # type: ignore[attr-defined]

    def forward(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        self.calls += 1
        self.fed_tokens += tokens.size
        logits = self.table[tokens]
        return logits, RecurrentState((tokens[:, -1:].astype(np.int64),))


def chain_engine(words: list[str], ending: bool = True) -> FakeEngine:
    """Each word is almost surely followed by the next one in the list; the last goes to the stop token."""
    n = len(words)
    table = np.full((n, n), -20.0)
    for i in range(n):
        nxt = i + 1 if i + 1 < n else (0 if ending else 2)
        table[i, nxt] = 20.0
    return FakeEngine(words, table)
