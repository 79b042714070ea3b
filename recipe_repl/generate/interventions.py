"""Change the LSTM and watch the next word: held units, a patched state, the units behind one logit.

- `intervened` gives a `NumpyEngine` that holds units of h or c at a value from a word onward
  (`:ablate`, `:clamp`); the session runs on it until `:ablate off`. Plain generation never comes
  here: the ONNX Runtime engine and its bound stepper are untouched.
- `twin_samples` generates the same continuation twice — on the model as it was and as changed —
  from the same random numbers (same seed, same sample number), so every difference between the two
  texts is the change's doing.
- `patched_resume` puts the state after another prompt in place of the text's own state after
  word N (`:patch`, the title-swap experiment); the continuation then reads on from it.
- `contributions` splits one word's logit into what each unit of h adds, h_k · Wout[k, word], plus
  the bias (`:units-for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from recipe_repl.base.settings import Settings
from recipe_repl.generate.cells import state_indices
from recipe_repl.generate.inspection import finite_logits, model_distribution
from recipe_repl.generate.loop import Request, Resume, Sample, generate, prefill
from recipe_repl.generate.lstm_model import LstmModel
from recipe_repl.generate.sampling import ProcessorSpec, row_rng
from recipe_repl.model.engine import Engine, RecurrentState
from recipe_repl.model.numpy_lstm import Intervention, NumpyEngine

TWIN_KEY = 0  # the sample number both twins draw with: the same random numbers


def base_engine(engine: Engine) -> Engine:
    """The engine as the model was loaded (the one an intervention stands in for)."""
    return engine.base if isinstance(engine, NumpyEngine) and engine.base is not None else engine


def intervened(model: LstmModel, intervention: Intervention | None) -> Engine:
    """The model with `intervention` in force (a `NumpyEngine`), or the loaded engine when None."""
    base = base_engine(model.engine)
    if intervention is None:
        return base
    return NumpyEngine(model.weights, base.vocab, base.info, intervention, base=base)


def twin_samples(engines: Sequence[Engine], prompt: str, settings: Settings, processors: Sequence[ProcessorSpec],
                 max_prompt_tokens: int, resumes: Sequence[Resume | None] | None = None,
                 key: int = TWIN_KEY) -> list[Sample]:
    """One continuation per engine, all from the same random numbers (`settings.seed`, or one drawn now).

    `resumes[k]` (if given) is where engine k reads on from, else it reads `prompt` from a fresh state.
    With the seed and the sample number `key` of a sample made from the same point, the unchanged
    twin is that very sample.
    """
    seed = settings.seed if settings.seed is not None else int(np.random.default_rng().integers(2**31))
    fixed = replace(settings, seed=seed, n=1, beam=0)
    out = []
    for k, engine in enumerate(engines):
        resume = resumes[k] if resumes else None
        if resume is not None:
            resume = replace(resume, rng=row_rng(seed, key), history=list(resume.history))
        request = Request(prompt, key=key, resume=resume)
        out += list(generate(engine, [request], fixed, processors, None, 1, max_prompt_tokens=max_prompt_tokens))
    return out


def resume_after(engine: Engine, ids: Sequence[int], words_before: Sequence[str]) -> Resume:
    """Where a continuation reads on after `ids` (from a fresh state) — as `:branch` rewinds."""
    last, state = prefill(engine, np.array([list(ids)], dtype=np.int64), engine.start(1))
    return Resume(state, last[0].copy(), (), list(ids), row_rng(None, 0), list(words_before))


def patched_resume(engine: Engine, ids: Sequence[int], words_before: Sequence[str], other: Sequence[int]) -> Resume:
    """Read on after the words `ids` — but from the state the model has after the words `other`.

    The next-word logits come with that state (they depend on h alone). Where the engine counts the
    words each row has read (an intervention's start), the count stays the text's own.
    """
    last, state = prefill(engine, np.array([list(other)], dtype=np.int64), engine.start(1))
    if isinstance(state, RecurrentState) and isinstance(engine, NumpyEngine):
        state = RecurrentState((*state.arrays[:2], np.full((1, 1), len(ids), np.int64)))
    return Resume(state, last[0].copy(), (), list(ids), row_rng(None, 0), list(words_before))


@dataclass(frozen=True)
class Contributions:
    """One word's logit after a text, split over the units: logit = Σ_k h_k · Wout[k, word] + bias."""

    word: int
    h: np.ndarray  # [H], the state the next word is read from
    per_unit: np.ndarray  # [H]: h_k · Wout[k, word]
    bias: float
    logit: float  # the engine's own logit for the word (ONNX Runtime's, or the changed model's)
    prob: float  # the engine's probability of the word (the model's own: temperature 1, no processors)

    @property
    def total(self) -> float:
        """Σ contributions + bias: the logit recomputed from its parts."""
        return float(self.per_unit.astype(np.float64).sum() + self.bias)

    def ranked(self, top: int = 10) -> list[int]:
        """The `top` units that raise the logit most (largest contribution first; ties by number)."""
        order = np.lexsort((np.arange(self.per_unit.size), -self.per_unit))[:top]
        return [int(u) for u in order]

    def lowering(self, top: int = 5) -> list[int]:
        """The `top` units that lower it most."""
        order = np.lexsort((np.arange(self.per_unit.size), self.per_unit))[:top]
        return [int(u) for u in order]


def contributions(model: LstmModel, ids: Sequence[int], word: int) -> Contributions:
    """What each unit of h (the engine's own state after `ids`) adds to `word`'s logit."""
    engine = model.engine
    hi, _ = state_indices(engine)
    last, state = prefill(engine, np.array([list(ids)], dtype=np.int64), engine.start(1))
    assert isinstance(state, RecurrentState)
    logits = finite_logits(engine, ids, last[0])  # a graph that breaks where NumPy's does not: no logit to split
    h = np.asarray(state.arrays[hi][0], np.float64)
    per_unit = h * model.weights.Wout[:, word].astype(np.float64)
    prob = float(model_distribution(logits)[word])
    return Contributions(word, h, per_unit, float(model.weights.bout[word]), float(logits[word]), prob)
