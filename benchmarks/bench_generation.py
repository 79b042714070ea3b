"""Per generated word at batch 1: the lecture's loop, this project's loop, the bare ONNX step, where a step's
time goes, what int8 buys, and how much CPU a word costs.

- The lecture's TextGenerator calls Keras `model.predict` on the whole prefix for every new token; this
  project feeds one token per step to ONNX Runtime, carrying the LSTM state.
- Loop overhead: `generate` (prefill, chain, softmax, draw, bookkeeping) per token over the bare step;
  and what recording the model's own probability of each word costs where the settings reshape it.
  The bare step is the faster of plain `session.run` and the I/O-bound stepper, one token in, logits
  and state out. Both at 1 thread and timed in CPU time (`time.process_time`): at one thread that is
  the work itself, and it is not inflated when other processes share the machine.
- The step: ONNX Runtime's own profiler, per operator (LSTM, the output MatMul, the rest).
- int8: the output layer quantized (after the graph clean-up), step speed-up at batch 1 and the
  held-out perplexity of both (when the model names its training corpus and the corpus is installed).
- CPU per word: 40 prompts × 200 tokens at batch 1 with ONNX Runtime's default threads (one per core,
  idle workers spinning) and with the setting the REPL uses; wall and CPU time of the process.

Ratios within one run are the result; wall-clock figures alone mean little on a shared machine.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import bench_model, verdict  # noqa: E402

from recipe_repl.base.settings import Settings  # noqa: E402
from recipe_repl.generate.loop import Request, generate  # noqa: E402
from recipe_repl.generate.sampling import ProcessorSpec, Sampler, ban_tokens, row_rng  # noqa: E402
from recipe_repl.model.engine import OnnxEngine, auto_threads  # noqa: E402
from recipe_repl.model.stepping import open_stepper  # noqa: E402
from recipe_repl.plugin.manager import Plugins  # noqa: E402

TOKENS = 200
ROUNDS = 15
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


def _no_stop() -> tuple[list[ProcessorSpec], Settings]:
    """Built-in processors plus one that bans the stop token, so that every sample runs TOKENS steps."""
    specs = [*Plugins(load_third_party=False).processor_specs(),
             ProcessorSpec("ban-stop", lambda settings, args, vocab: lambda x, ctx: ban_tokens(x, [0]))]
    return specs, Settings(max_tokens=TOKENS, seed=0, use=(("ban-stop", ()),))


def loop_overhead(engine: OnnxEngine) -> dict[str, float]:
    """CPU µs per token: bare session.run, bare stepper, the sampler alone, and the whole loop (interleaved rounds)."""
    ids = engine.vocab.encode(PROMPT)
    token = np.array([ids[-1]])
    feed = {engine.roles.tokens: token.reshape(1, 1).astype(engine.token_dtype)}
    feed.update((n, np.zeros((1, *s), np.float32)) for n, s in zip(engine.roles.state_inputs,
                                                                  engine.roles.state_shapes, strict=True))
    fetch = [engine.roles.logits, *engine.roles.state_outputs]
    specs, settings = _no_stop()
    # the default settings' chain is empty; the stop-token ban only makes every sample the same length,
    # so the sampler alone is timed with the default settings
    sampler = Sampler(Settings(seed=0), specs, engine.vocab)

    def bare_run() -> None:
        f = dict(feed)
        for _ in range(TOKENS):
            out = engine.session.run(fetch, f)
            f.update(zip(engine.roles.state_inputs, out[1:], strict=True))

    def bare_bound() -> None:
        stepper = open_stepper(engine, engine.start(1))
        for _ in range(TOKENS):
            stepper.step(token)

    logits = np.asarray(engine.forward(token.reshape(1, 1), engine.start(1))[0][:, -1, :])
    rngs, history = [row_rng(0, 0)], [list(ids)]

    def sampler_alone() -> None:
        for _ in range(TOKENS):
            sampler.sample(logits, history, rngs)

    def loop() -> None:
        [s] = generate(engine, [Request(PROMPT)], settings, specs)
        assert len(s.token_ids) == TOKENS

    # the REPL and JSON records ask for the model's own probability of each word beside the drawn one;
    # at settings that reshape the distribution (here T = 0.7) it is one more pass over the logits
    cold = settings.replace(temperature=0.7)

    def loop_cold() -> None:
        [s] = generate(engine, [Request(PROMPT)], cold, specs)
        assert len(s.token_ids) == TOKENS

    def loop_cold_model() -> None:
        [s] = generate(engine, [Request(PROMPT)], cold, specs, model_probs=True)
        assert s.model_probs is not None and len(s.model_probs) == TOKENS

    fns = {"session.run": bare_run, "stepper": bare_bound, "sampler": sampler_alone, "loop": loop,
           "loop T=0.7": loop_cold, "loop T=0.7 + model": loop_cold_model}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            t0 = time.process_time()
            fn()
            best[name] = min(best[name], (time.process_time() - t0) / TOKENS * 1e6)
    return best


def interleaved(engine: OnnxEngine) -> dict[str, float]:
    """CPU µs per token of the step and of the sampler when they take turns, as in the loop, with no bookkeeping.

    Timed part by part: the difference from each alone is what one costs the other (each evicts the
    other's arrays and weights from the CPU caches); the loop minus their sum is its own bookkeeping.
    """
    sampler = Sampler(Settings(seed=0), Plugins(load_third_party=False).processor_specs(), engine.vocab)
    ids = engine.vocab.encode(PROMPT)
    best = {"step": float("inf"), "sampler": float("inf"), "pair": float("inf")}
    clock = time.process_time
    for _ in range(ROUNDS):
        stepper = open_stepper(engine, engine.start(1))
        history, rngs = [list(ids)], [row_rng(0, 0)]
        logits = stepper.step(np.array([ids[-1]]))
        in_step = in_sampler = 0.0
        t_start = clock()
        for _ in range(TOKENS):
            t0 = clock()
            drawn = sampler.sample(logits, history, rngs)
            t1 = clock()
            logits = stepper.step(drawn.tokens)
            in_sampler += t1 - t0
            in_step += clock() - t1
        pair = clock() - t_start
        best["step"] = min(best["step"], in_step / TOKENS * 1e6)
        best["sampler"] = min(best["sampler"], in_sampler / TOKENS * 1e6)
        best["pair"] = min(best["pair"], pair / TOKENS * 1e6)
    return best


def step_profile(path: Path, steps: int = 300) -> dict[str, float]:
    """Per-operator share of a stateful step at batch 1 (ONNX Runtime's profiler, 1 thread)."""
    import onnxruntime as ort

    engine = OnnxEngine(path, threads=1)
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "step")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {engine.roles.tokens: np.full((1, 1), 5, engine.token_dtype)}
    feed.update((n, np.zeros((1, *s), np.float32)) for n, s in zip(engine.roles.state_inputs,
                                                                  engine.roles.state_shapes, strict=True))
    for _ in range(steps):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: dict[str, float] = collections.defaultdict(float)
    nodes: dict[str, int] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"] / steps
            nodes[e["args"]["op_name"]] += 1
    node_count = sum(nodes.values()) // steps
    total = sum(per_op.values())
    big = {"LSTM": per_op.pop("LSTM", 0.0) + per_op.pop("DynamicQuantizeLSTM", 0.0),
           "output MatMul": sum(per_op.pop(k, 0.0) for k in ("MatMul", "MatMulInteger", "DynamicQuantizeMatMul",
                                                            "MatMulIntegerToFloat"))}
    big[f"the other {node_count - 2} nodes"] = sum(per_op.values())
    return {k: v / total for k, v in big.items()} | {"_us": total}


def quantized(path: Path) -> dict | None:
    """Output-layer int8 (after the graph clean-up) against the float file: step speed-up, perplexity."""
    try:
        import onnx  # noqa: F401 - the quantizer needs it (the train extra)
        from recipe_repl.export import quantize
    except ImportError:
        return None
    q_path = quantize.write_quantized(path, Path(tempfile.mkdtemp()) / "int8-output.onnx", "int8-output")
    try:
        return quantize.measure(path, q_path, limit=300)
    except Exception as exc:  # no corpus in the metadata, or it is not installed: speed only
        f, q = quantize.step_seconds([path, q_path])
        return {"speedup": f / q, "perplexity_change": None, "why": str(exc).splitlines()[0][:100]}


def cpu_per_word(path: Path, prompts: int = 40) -> dict[str, tuple[float, float]]:
    """(wall s, CPU s) for `prompts` × TOKENS tokens at batch 1: ORT's default threads vs the REPL's setting."""
    specs, settings = _no_stop()
    reqs = [Request(PROMPT, key=i) for i in range(prompts)]
    engines = {"ORT default (a thread per core, spinning)": OnnxEngine(path, threads=0, spinning=True),
               f"the REPL's setting ({auto_threads(interactive=True)} thread)":
                   OnnxEngine(path, threads=auto_threads(interactive=True))}
    best: dict[str, tuple[float, float]] = {}
    for _ in range(3):
        for name, engine in engines.items():
            w0, c0 = time.perf_counter(), time.process_time()
            list(generate(engine, reqs, settings, specs, batch_size=1))
            w, c = time.perf_counter() - w0, time.process_time() - c0
            if name not in best or w < best[name][0]:
                best[name] = (w, c)
    return best


def _bookkeeping(us: float) -> str:
    """The loop minus the step-and-sampler pair: a small difference of two minima, so it can come out below 0."""
    return f"{us:.1f} µs/token" if us > 0 else f"within the noise ({us:.1f} µs/token)"


def main() -> None:
    """Print every per-word figure with its target."""
    path, label = bench_model()
    engine = OnnxEngine(path, threads=1)
    cfg = engine.info.config
    vocab_size = len(engine.vocab)
    emb, units = int(cfg.get("embedding_dim", 100)), int(cfg.get("units", 128))
    print(f"model: {path} ({label}); vocab {vocab_size}, embedding {emb}, units {units}; batch 1")

    t = loop_overhead(engine)
    bare = min(t["session.run"], t["stepper"])
    print(f"bare step, session.run:        {t['session.run']:8.1f} µs/token (CPU, 1 thread)")
    print(f"bare step, I/O-bound stepper:  {t['stepper']:8.1f} µs/token")
    print(f"sampler alone (default chain): {t['sampler']:8.1f} µs/token")
    print(f"recipe-repl loop (generate):   {t['loop']:8.1f} µs/token")
    overhead = t["loop"] / bare
    print(f"loop overhead over the bare step: {overhead:.2f}x   {verdict(overhead, 1.3, higher_is_better=False)}")
    rest = t["loop"] - t["stepper"] - t["sampler"]
    print(f"  where the loop's time goes: step {t['stepper'] / t['loop']:.0%}, sampler {t['sampler'] / t['loop']:.0%}, "
          f"the rest (bookkeeping, cache refills after each step, prefill) {rest / t['loop']:.0%}")
    cost = t["loop T=0.7 + model"] / t["loop T=0.7"]
    print(f"the model's probability beside the drawn one (REPL, JSON; T = 0.7): {t['loop T=0.7 + model']:.1f} "
          f"against {t['loop T=0.7']:.1f} µs/token, {cost:.2f}x (at T = 1 with no processor it is the drawn one: free)")
    turns = interleaved(engine)
    print(f"  step and sampler taking turns (no bookkeeping): step {turns['step']:.1f} µs (alone {t['stepper']:.1f}), "
          f"sampler {turns['sampler']:.1f} µs (alone {t['sampler']:.1f}); the pair {turns['pair']:.1f} µs, "
          f"so the loop's own bookkeeping is {_bookkeeping(t['loop'] - turns['pair'])}")

    prof = step_profile(path)
    share = ", ".join(f"{k} {v:.0%}" for k, v in prof.items() if not k.startswith("_"))
    print(f"one step by operator (ONNX Runtime profiler, {prof['_us']:.0f} µs of kernels): {share}")

    q = quantized(path)
    if q is None:
        print("int8: not measured (needs the train extra: onnx)")
    else:
        line = f"int8 output layer: stateful step {q['speedup']:.2f}x faster than float32   {verdict(q['speedup'], 1.5)}"
        print(line)
        if q.get("perplexity_change") is None:
            print(f"  held-out perplexity: not measured ({q.get('why')})")
        else:
            ok = abs(q["perplexity_change"]) <= 0.01
            print(f"  held-out perplexity {q['float32']['perplexity']:.3f} → {q['quantized']['perplexity']:.3f} "
                  f"({q['perplexity_change']:+.2%}; target within 1%: {'met' if ok else 'not met'})")

    c = cpu_per_word(path)
    (dname, (dw, dc)), (rname, (rw, rc)) = list(c.items())
    print(f"{dname}: wall {dw:.2f} s, CPU {dc:.2f} s ({dc / dw:.2f}x wall)")
    print(f"{rname}: wall {rw:.2f} s, CPU {rc:.2f} s")
    print(f"CPU per word over wall at batch 1: {rc / rw:.2f}x   {verdict(rc / rw, 1.1, higher_is_better=False)}; "
          f"wall against ORT's default: {rw / dw:.2f}x   {verdict(rw / dw, 1.05, higher_is_better=False)}")

    lecture_ms = lecture_ms_per_token(vocab_size, emb, units, engine.vocab.encode(PROMPT), 100)
    ours_ms = t["loop"] / 1000
    print(f"lecture loop (Keras predict on the whole prefix): {lecture_ms:9.3f} ms/token (wall)")
    print(f"speed-up over the lecture: {lecture_ms / ours_ms:,.0f}x   {verdict(lecture_ms / ours_ms, 300)}")


if __name__ == "__main__":
    main()
