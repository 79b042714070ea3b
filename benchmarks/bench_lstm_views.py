"""The views inside the LSTM on the shipped model: how long `:saliency`'s parts take on a 100-word text, and
what generating with units held (`:ablate`) costs per word against plain generation.

- Occlusion: 99 words hidden one at a time, batched through ONNX Runtime as the REPL runs it (one
  intra-op thread); target: under a second. Wall time, best of several runs (a shared machine
  only ever slows a run down).
- Gradient × input for the last word and the distance profile (every word's gradient, 80 words back),
  both NumPy; the NumPy forward's agreement with ONNX Runtime on the same text.
- Generation per word at batch 1: the plain ONNX Runtime path (what every prompt uses while no unit is
  held) and the NumPy engine `:ablate` switches to; CPU time, best of several runs.

NumPy's BLAS threads spin when other processes busy the cores: on a loaded machine run with
OPENBLAS_NUM_THREADS=1 for figures that say what the arithmetic costs.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import bench_model, best_of, verdict  # noqa: E402

from recipe_repl.base.settings import Settings  # noqa: E402
from recipe_repl.generate import gates, influence  # noqa: E402
from recipe_repl.generate.interventions import intervened  # noqa: E402
from recipe_repl.generate.loop import Request, generate  # noqa: E402
from recipe_repl.generate.lstm_model import lstm_model  # noqa: E402
from recipe_repl.model.engine import OnnxEngine  # noqa: E402
from recipe_repl.model.numpy_lstm import Intervention, forward  # noqa: E402
from recipe_repl.plugin.manager import Plugins  # noqa: E402

WORDS = 100
ROUNDS = 5


def main() -> None:
    """Print the figures."""
    path, what = bench_model()
    engine = OnnxEngine(path, provider="cpu", threads=1)  # the REPL's setting
    print(f"model: {path.name} ({what}); text: {WORDS} words of the first bundled validation recipe")
    t0 = time.perf_counter()
    model = lstm_model(engine)
    print(f"reading and checking the weights: {time.perf_counter() - t0:.3f} s")
    text = " ".join(engine.info.sample_texts) or "recipe for roast chicken | " + "mix the salt and pepper . " * 20
    ids = engine.vocab.encode(text)[:WORDS]
    occlusion = best_of(ROUNDS, lambda: influence.occlusion(model, ids, len(ids)))
    print(f"occlusion, word {len(ids)} ({len(ids) - 1} words hidden one at a time, ONNX Runtime, 1 thread): "
          f"{occlusion:.3f} s {verdict(1.0 / occlusion, 1.0)} [1 s / time]")
    grad = best_of(ROUNDS, lambda: influence.gradient_x_input(model, ids, [len(ids)]))
    print(f"gradient × input, word {len(ids)} (NumPy, float64): {grad:.3f} s")
    profile = best_of(ROUNDS, lambda: influence.distance_profile(model, ids))
    print(f"distance profile, all {len(ids) - 1} words, 80 back (NumPy, float32): {profile:.3f} s")
    texts = [engine.vocab.encode(t) for t in engine.info.sample_texts][:64]
    if texts:
        summary = best_of(2, lambda: gates.trace_texts(model, texts))
        print(f"gates over the {len(texts)} bundled recipes ({sum(map(len, texts)):,} words, NumPy): {summary:.3f} s")
    logits, state = engine.forward(np.array([ids]), engine.start(1))
    run = forward(model.weights, np.array([ids]))
    assert run.logits is not None
    print(f"NumPy forward vs ONNX Runtime over the text: max |Δlogits| {np.abs(run.logits - logits).max():.2e}, "
          f"max |Δc| {np.abs(run.c[:, -1] - state.arrays[1]).max():.2e} (max |c| {np.abs(state.arrays[1]).max():.1f})")
    held = intervened(model, Intervention("c", ((0, 0.0),)))
    plugins = Plugins(load_third_party=False)
    settings = Settings(seed=1, max_tokens=100)

    def per_word(e: object) -> float:
        words = []

        def once() -> None:
            [sample] = generate(e, [Request("recipe for roast chicken |")], settings,  # type: ignore[arg-type]
                                plugins.processor_specs())
            words.append(len(sample.token_probs))
        return best_of(ROUNDS, once, time.process_time) / max(words)

    plain, ablated = per_word(engine), per_word(held)
    print(f"generation per word at batch 1 (CPU time): plain {plain * 1000:.2f} ms (ONNX Runtime, unchanged), "
          f"with a unit held {ablated * 1000:.2f} ms (NumPy engine, only while :ablate is on): {ablated / plain:.2f}x")


if __name__ == "__main__":
    main()
