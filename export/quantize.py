"""Int8 quantization and graph clean-up of an exported step model, and the measure of what they buy.

Two quantizations (onnxruntime.quantization.quantize_dynamic: int8 weights, activations quantized at
run time):

- `int8`: every MatMul, Gather and the LSTM itself;
- `int8-output`: only the output layer (the units × vocabulary MatMul, most of a step's time at batch 1:
  its float32 weights are 5 MB for 5,000 words, read in full for every token).

`simplify` removes what tf2onnx leaves around the two big ops (the embedding's negative-index
arithmetic, the Tensordot's Shape/Gather/Concat/Reshape chain): a dozen tiny kernels of a few µs each.
It checks its result against the original on random tokens and gives the original back if they differ.

`measure` gives the card's figures: step speed-up at batch 1 and held-out perplexity, float vs quantized
(`write_quantized` makes the file to measure; quantize_dynamic keeps the metadata).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

SCOPES = ("int8", "int8-output")


def quantize_int8(model_bytes: bytes, scope: str = "int8") -> bytes:
    """The model with int8 weights: everything (`int8`) or only the output layer (`int8-output`)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if scope not in SCOPES:
        raise ValueError(f"unknown quantization {scope!r} (choose one of {', '.join(SCOPES)})")
    options: dict[str, Any] = {}
    if scope == "int8-output":
        model_bytes, name = _output_matmul(model_bytes)
        options = {"op_types_to_quantize": ["MatMul"], "nodes_to_quantize": [name]}
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model_bytes)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, **options)
        return dst.read_bytes()


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Warnings through the root logger dropped meanwhile.

    ONNX Runtime's quantizer warns there ("Please consider to run pre-processing before
    quantization"), which `export --quantize` would print between its own lines; nothing a user can
    act on. A handler on the root logger also keeps `logging.warning` from configuring it for good.
    """
    root = logging.getLogger()
    null, level = logging.NullHandler(), root.level
    root.addHandler(null)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(null)
        root.setLevel(level)


def write_quantized(float_path: Path, out: Path, scope: str = "int8-output") -> Path:
    """Write the cleaned-up, quantized copy of an exported model file (its metadata kept) to `out`."""
    from recipe_repl.base import atomic

    out = Path(out)
    atomic.write_bytes(out, quantize_int8(simplify(Path(float_path).read_bytes()), scope))
    return out


def _output_matmul(model_bytes: bytes) -> tuple[bytes, str]:
    """The model (its nodes named, if some were not) and the name of its output layer's MatMul:
    the one MatMul whose weight is a 2-D initializer ([units, vocab])."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    found = [n for n in model.graph.node if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2]
    if len(found) != 1:
        raise ValueError(f"expected one MatMul with a 2-D weight (the output layer), found {len(found)}")
    unnamed = [n for n in model.graph.node if not n.name]
    for k, node in enumerate(unnamed):
        node.name = f"{node.op_type}_{k}"
    return (model.SerializeToString() if unnamed else model_bytes), found[0].name


def simplify(model_bytes: bytes) -> bytes:
    """The same model with tf2onnx's index arithmetic and Tensordot reshapes removed (checked; else unchanged)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    changed = _direct_embedding(model) | _direct_matmul(model)
    if not changed:
        return model_bytes
    _drop_dead_nodes(model)
    out = model.SerializeToString()
    return out if _same_outputs(model_bytes, out) else model_bytes


def _producers(model: Any) -> dict[str, Any]:
    return {o: n for n in model.graph.node for o in n.output}


def _direct_embedding(model: Any) -> bool:
    """Feed the token ids straight to the embedding's Gather (ONNX Gather takes negative ids itself).

    tf2onnx spells Keras' `ids < 0 ? ids + vocab : ids` as nine nodes; they are only replaced when
    every path back from the Gather's indices ends at the token input or at constants.
    """
    init = {i.name for i in model.graph.initializer}
    tokens = model.graph.input[0].name
    produced = _producers(model)
    changed = False
    for node in model.graph.node:
        if node.op_type != "Gather" or node.input[0] not in init or node.input[1] in (tokens, *init):
            continue
        if _only_from(node.input[1], tokens, produced, init):
            node.input[1] = tokens
            changed = True
    return changed


def _only_from(name: str, tokens: str, produced: dict[str, Any], init: set[str]) -> bool:
    seen, todo, reached = set(), [name], False
    while todo:
        cur = todo.pop()
        if cur in seen or cur in init or cur == "":
            continue
        seen.add(cur)
        if cur == tokens:
            reached = True
            continue
        node = produced.get(cur)
        if node is None or node.op_type == "Shape" or len(seen) > 32:
            return False
        todo.extend(node.input)
    return reached


def _direct_matmul(model: Any) -> bool:
    """Reshape(x, [-1, units]) → MatMul → Reshape(back): a MatMul on the 3-D x does the same."""
    produced = _producers(model)
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in model.graph.output}
    changed = False
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        before = produced.get(node.input[0])
        after = consumers.get(node.output[0], [])
        if before is None or before.op_type != "Reshape" or len(after) != 1 or after[0].op_type != "Reshape":
            continue
        out = after[0].output[0]
        if len(consumers.get(before.output[0], [])) != 1 or out in outputs:
            continue
        node.input[0] = before.input[0]
        for user in consumers.get(out, []):
            user.input[:] = [node.output[0] if i == out else i for i in user.input]
        changed = True
    return changed


def _drop_dead_nodes(model: Any) -> None:
    """Remove nodes and initializers no graph output depends on."""
    produced = _producers(model)
    needed: set[str] = set()
    todo = [o.name for o in model.graph.output]
    while todo:
        cur = todo.pop()
        if cur in needed:
            continue
        needed.add(cur)
        node = produced.get(cur)
        if node is not None:
            todo.extend(i for i in node.input if i)
    keep = [n for n in model.graph.node if any(o in needed for o in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    inits = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def _same_outputs(a: bytes, b: bytes, tolerance: float = 1e-5) -> bool:
    """Both models give the same outputs on random tokens from a random state (2 rows, 3 steps)."""
    from recipe_repl.export.parity import session

    sa, sb = session(a), session(b)
    feed = _random_feed(sa)
    try:
        out_b = sb.run(None, feed)
    except Exception:  # a broken rewrite: keep the original
        return False
    return all(np.abs(np.asarray(x) - np.asarray(y)).max() <= tolerance
               for x, y in zip(sa.run(None, feed), out_b, strict=True))


def _random_feed(sess: Any, rows: int = 2, steps: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    vocab = sess.get_outputs()[0].shape[-1]
    high = vocab if isinstance(vocab, int) else 2
    feed: dict[str, np.ndarray] = {}
    for inp in sess.get_inputs():
        if "int" in inp.type:
            dtype = np.int32 if "int32" in inp.type else np.int64
            feed[inp.name] = rng.integers(0, high, (rows, steps)).astype(dtype)
        else:
            feed[inp.name] = rng.standard_normal((rows, *inp.shape[1:])).astype(np.float32)
    return feed


# --- what it buys ---------------------------------------------------------------------------------


def step_seconds(paths: list[Path], steps: int = 200, rounds: int = 15) -> list[float]:
    """Seconds per stateful step at batch 1 (1 thread, I/O bound, CPU time) for each model, best of
    `rounds` interleaved rounds so that every model sees the same machine."""
    from recipe_repl.model.engine import OnnxEngine
    from recipe_repl.model.stepping import open_stepper

    engines = [OnnxEngine(p, provider="cpu", threads=1) for p in paths]
    best = [float("inf")] * len(engines)
    for _ in range(rounds):
        for k, engine in enumerate(engines):
            stepper = open_stepper(engine, engine.start(1))
            token = np.array([min(5, len(engine.vocab) - 1)])
            t0 = time.process_time()
            for _ in range(steps):
                stepper.step(token)
            best[k] = min(best[k], (time.process_time() - t0) / steps)
    return best


def measure(float_path: Path, quantized_path: Path, data: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Step speed-up and held-out perplexity of a quantized model against its float32 original.

    Returns {"float32": {...}, "quantized": {...}, "speedup": x, "perplexity_change": relative} with
    each model's `step_ms` and eval figures (`recipe-repl eval`'s LSTM row; the corpus from the
    model's metadata unless `data` is given; `limit` held-out recipes per corpus).
    """
    from recipe_repl.export.evaluate import evaluate

    float_s, quant_s = step_seconds([Path(float_path), Path(quantized_path)])
    result: dict[str, Any] = {}
    for key, path, seconds in (("float32", float_path, float_s), ("quantized", quantized_path, quant_s)):
        lstm = evaluate(Path(path), data=data, limit=limit, ngram=False)["lstm"]
        result[key] = {"path": str(path), "step_ms": seconds * 1000, "perplexity": lstm["perplexity"],
                       "top1": lstm["top1"], "top5": lstm["top5"], "tokens": lstm["tokens"]}
    result["speedup"] = float_s / quant_s
    result["perplexity_change"] = result["quantized"]["perplexity"] / result["float32"]["perplexity"] - 1
    return result
