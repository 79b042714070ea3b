"""Which earlier words made word N likely: occlusion, gradient × input, and how far back influence reaches.

Two measures of the influence of word j on the model's log-probability of word k (j < k):

- **occlusion**: log p(word k | the text) − log p(word k | the text with word j read as [UNK]) —
  forward passes only, through the engine (ONNX Runtime), so it is what the model really computes.
  Rows share what they can: the row that hides word j starts from the text's own state before
  word j, so a k-word text costs k batched one-word steps (about k²/2 row-steps), not k² words.
- **gradient × input**: the exact gradient of log p(word k) with respect to word j's embedding,
  dotted with that embedding (first-order: what a small move of the word toward zero would do),
  by NumPy backpropagation through the weights read from the file (`model.numpy_lstm`).

Positive means the word made word k likelier. The distance profile averages |gradient × input| over
every word of the text by how many words back the influencing word is: how far the memory reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recipe_repl.generate.lstm_model import LstmModel
from recipe_repl.model.numpy_lstm import input_gradients, log_softmax
from recipe_repl.model.vocab import UNK_ID

PROFILE_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 20), (21, 40), (41, 80))
PROFILE_REACH = PROFILE_BUCKETS[-1][1]  # words back the profile's gradients are followed


@dataclass(frozen=True)
class Influence:
    """The influence of each word before word k on log p(word k)."""

    k: int  # 1-based number of the word explained
    logprob: float  # log p(word k | the words before), the model's own distribution
    occlusion: np.ndarray  # [k - 1]: Δ log p when word j is read as [UNK]
    gradient: np.ndarray  # [k - 1]: gradient × input
    unknown: tuple[int, ...]  # 0-based positions already [UNK]: hiding them changes nothing


def occlusion(model: LstmModel, ids: Sequence[int], k: int, reach: int | None = None) -> tuple[float, np.ndarray]:
    """log p(word k) and, for each word j < k, log p(word k) − log p(word k with word j read as [UNK]).

    Batched through the engine: at step t the rows are the text itself, the rows that hid a word
    before t, and one new row hiding word t (which starts from the text's own state). With `reach`,
    only the `reach` words nearest word k are hidden (NaN for the others).
    """
    engine = model.engine
    inputs = np.asarray(ids[:k - 1], dtype=np.int64)
    target = int(ids[k - 1])
    first = 0 if reach is None else max(0, k - 1 - reach)
    state = engine.start(1)
    logits: np.ndarray | None = None
    for t in range(k - 1):
        # row 0: the text; then the rows that hid a word before t; a new row hides word t now
        hide = t >= first
        batch = engine.concat([state, state.take([0])]) if hide else state
        tokens = np.full((batch.batch_size, 1), inputs[t], dtype=np.int64)
        if hide:
            tokens[-1, 0] = UNK_ID
        out, state = engine.forward(tokens, batch)
        logits = out[:, -1, :]
    assert logits is not None, "word 1 has no words before it"
    logp = log_softmax(logits)[:, target]
    delta = np.full(k - 1, np.nan)
    delta[first:] = logp[0] - logp[1:]
    delta[inputs == UNK_ID] = 0.0  # hiding an [UNK] is no change (batch arithmetic could leave 1e-7)
    return float(logp[0]), delta


def gradient_x_input(model: LstmModel, ids: Sequence[int], targets: Sequence[int],
                     reach: int | None = None, precise: bool = True) -> np.ndarray:
    """[len(targets), len(ids) - 1]: for each target word k (1-based), gradient × input of log p(word k)
    with respect to each earlier word's embedding (0 for words not before k, or beyond `reach` back)."""
    return input_gradients(model.weights, ids, targets, intervention=model.intervention, times_input=True,
                           reach=reach, precise=precise)


def influence(model: LstmModel, ids: Sequence[int], k: int, reach: int | None = None) -> Influence:
    """Both measures for word k of the text `ids` (2 ≤ k ≤ len(ids)); occlusion within `reach` words."""
    logp, occ = occlusion(model, ids, k, reach)
    grad = gradient_x_input(model, ids[:k], [k])[0]
    unknown = tuple(j for j in range(k - 1) if ids[j] == UNK_ID)
    return Influence(k, logp, occ, grad, unknown)


@dataclass(frozen=True)
class Profile:
    """Mean |gradient × input| by distance (words back), over every predicted word of a text."""

    buckets: tuple[tuple[int, int], ...]
    mean: np.ndarray  # per bucket; NaN where the text has no pair that far apart
    pairs: np.ndarray  # per bucket: how many (word, earlier word) pairs were averaged
    targets: int


def distance_profile(model: LstmModel, ids: Sequence[int],
                     buckets: Sequence[tuple[int, int]] = PROFILE_BUCKETS) -> Profile:
    """How much, on average, a word influences the words 1, 2, … , 41–80 words after it."""
    targets = list(range(2, len(ids) + 1))
    reach = max(hi for _, hi in buckets)
    sal = np.abs(gradient_x_input(model, ids, targets, reach=reach, precise=False))  # [targets, words]
    k = np.array(targets)[:, None]
    j = np.arange(1, len(ids))[None, :]
    distance = k - j  # word j is k - j words before word k
    means, counts = [], []
    for lo, hi in buckets:
        mask = (distance >= lo) & (distance <= hi)
        counts.append(int(mask.sum()))
        means.append(float(sal[mask].mean()) if mask.any() else float("nan"))
    return Profile(tuple(buckets), np.array(means), np.array(counts), len(targets))

