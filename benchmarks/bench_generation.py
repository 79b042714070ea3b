"""Milliseconds per generated token: the lecture's loop vs this project's, and the bare ONNX step.

The lecture's TextGenerator calls Keras `model.predict` on the whole prefix for every new token; this
project feeds one token per step to ONNX Runtime, carrying the LSTM state. Batch 1, 100 tokens, one
run on the same machine; the ratios are the result (wall-clock numbers alone mean little here).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import bench_model, best_of  # noqa: E402

from recipe_repl.engine import OnnxEngine  # noqa: E402
from recipe_repl.generation import Request, generate  # noqa: E402
from recipe_repl.plugins import Plugins  # noqa: E402
from recipe_repl.settings import Settings  # noqa: E402

TOKENS = 100
PROMPT = "recipe for roast chicken"


def lecture_ms_per_token(vocab_size: int, emb: int, units: int, prompt_ids: list[int], tokens: int) -> float:
    """The lecture's generation loop on a Keras model of the same architecture and vocabulary."""
    import keras

    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(vocab_size, emb),
        keras.layers.LSTM(units, return_sequences=True),
        keras.layers.Dense(vocab_size, activation="softmax"),
    ])
    rng = np.random.default_rng(0)
    start = list(prompt_ids)
    model.predict(np.array([start]), verbose=0)  # build and warm up
    t0 = time.perf_counter()
    for _ in range(tokens):
        y = model.predict(np.array([start]), verbose=0)
        probs = y[0][-1].astype(np.float64)
        probs = probs ** (1 / 1.0)
        probs /= probs.sum()
        start.append(int(rng.choice(len(probs), p=probs)))
    return (time.perf_counter() - t0) * 1000 / tokens


def main() -> None:
    """Print the three timings and their ratios."""
    path, label = bench_model()
    engine = OnnxEngine(path, threads=1)
    plugins = Plugins(load_third_party=False)
    cfg = engine.info.config
    vocab_size = len(engine.vocab)
    emb, units = int(cfg.get("embedding_dim", 100)), int(cfg.get("units", 128))
    ids = engine.vocab.encode(PROMPT)
    print(f"model: {path} ({label}); vocab {vocab_size}, embedding {emb}, units {units}; batch 1")

    # Bare ONNX step: one token in, logits and state out, nothing else.
    state = engine.start(1)
    tok = np.array([[ids[-1]]], dtype=np.int64)

    def bare() -> None:
        nonlocal state
        for _ in range(TOKENS):
            _, state = engine.forward(tok, state)

    bare_ms = best_of(7, bare) * 1000 / TOKENS

    # This project's loop: prefill + one step per token + sampling (T=1, stop token banned by seed
    # choice is not possible, so count the tokens actually generated).
    settings = Settings(max_tokens=TOKENS, seed=0)
    specs = plugins.processor_specs()
    counts: list[int] = []

    def ours() -> None:
        [s] = generate(engine, [Request(PROMPT)], settings, specs)
        counts.append(len(s.token_ids) + (s.stop_reason.value == "stop token"))

    total = best_of(7, ours)
    ours_ms = total * 1000 / max(1, min(counts))
    settings_k = Settings(max_tokens=TOKENS, seed=0, temperature=0.8, top_k=50)

    def ours_topk() -> None:
        list(generate(engine, [Request(PROMPT)], settings_k, specs))

    topk_ms = best_of(5, ours_topk) * 1000 / TOKENS

    lecture_ms = lecture_ms_per_token(vocab_size, emb, units, ids, TOKENS)
    print(f"lecture loop (Keras predict on the whole prefix): {lecture_ms:9.3f} ms/token")
    print(f"recipe-repl loop (ONNX step + sampling, T=1):     {ours_ms:9.3f} ms/token")
    print(f"recipe-repl loop with T=0.8, top-k 50:             {topk_ms:9.3f} ms/token")
    print(f"bare ONNX step:                                   {bare_ms:9.3f} ms/token")
    print(f"speed-up over the lecture: {lecture_ms / ours_ms:,.0f}x   (target >= 300x)")
    print(f"loop overhead over the bare step: {ours_ms / bare_ms:.2f}x   (target <= 1.5x)")


if __name__ == "__main__":
    main()
