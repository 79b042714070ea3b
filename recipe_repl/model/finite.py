"""Finding logits that are not finite (NaN or ±inf), at the cost of what the caller computes anyway.

The load-time probe feeds one step; a model may still go wrong after some word. Whoever reads
logits checks them where it already has a number per row: the generation loop the probability of
the drawn word (NaN whenever the row's normaliser is), scoring and eval the log-sum-exp of each
position, the inspection views the one row they show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recipe_repl.base.errors import NonFiniteLogits


def first_bad(values: np.ndarray) -> int | None:
    """The first index along the first axis whose entry is not finite (an array [n] or [n, …]), or None."""
    ok = np.isfinite(values)
    if ok.ndim > 1:
        ok = ok.reshape(ok.shape[0], -1).all(axis=1)
    if bool(ok.all()):
        return None
    return int(np.argmin(ok))


def after(words: Sequence[str], position: int) -> str:
    """Where in a text the next-word logits at `position` (0-based: after its first word) were read."""
    word = words[position] if 0 <= position < len(words) else ""
    return f"after word {position + 1} “{word}”" if word else f"at word {position + 1}"


def not_finite(where: str, words: Sequence[str] = (), position: int = -1) -> NonFiniteLogits:
    """The error for logits that are not finite numbers `where` (a text, a step)."""
    at = after(words, position) if position >= 0 else ""
    word = words[position] if 0 <= position < len(words) else ""
    place = ", ".join(p for p in (where, at) if p)
    return NonFiniteLogits(f"the model's logits are not finite numbers (NaN or infinity) {place}", position, word)
