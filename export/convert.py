"""Keras run folder → ONNX graph (tf2onnx): a stateful step graph with a native ONNX LSTM node.

The inference graph shares the trained weights: tokens int32 [batch, time], h0/c0 float32
[batch, units] → logits float32 [batch, time, vocab], h, c. Keras' LSTM is built with
`use_cudnn=False` so the graph never holds a CudnnRNN op, and tf2onnx rewrites its loop into `LSTM`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe_repl.train.config import TrainConfig
from recipe_repl.train.rundir import RunDir
from recipe_repl.train.tf_env import import_quietly, set_native_logging

from recipe_repl.base.errors import UserError
from recipe_repl.model import contract

OPSET = 17


EXTRA_MISSING = "export needs the 'train' extra: pip install 'recipe-repl[train]'"


def export_libs_installed() -> bool:
    """Whether TensorFlow, Keras and tf2onnx can be imported, found without importing them (milliseconds)."""
    import importlib.util
    import sys

    for name in ("tensorflow", "keras", "tf2onnx"):
        if name in sys.modules:
            if sys.modules[name] is None:
                return False
            continue
        if importlib.util.find_spec(name) is None:
            return False
    return True


def import_export_libs(verbose: bool = False) -> tuple[Any, Any, Any]:
    """TensorFlow, Keras and tf2onnx, or a UserError naming the extra to install; TensorFlow's import
    notices off unless `verbose` (the quiet import `train` uses)."""
    set_native_logging(verbose)  # a no-op when a command already chose (or TensorFlow is already imported)
    try:
        import_quietly(verbose)
        import keras
        import tensorflow as tf
        import tf2onnx
    except ImportError:
        raise UserError(EXTRA_MISSING) from None
    return tf, keras, tf2onnx


@dataclass
class LoadedRun:
    run: RunDir
    config: TrainConfig
    words: list[str]
    lowercase: str
    model: object  # the trained Keras model (tokens → logits)
    weights: Path | None = None  # the checkpoint it was loaded from


def load_run(run_dir: Path, epoch: int | None = None) -> LoadedRun:
    """Rebuild the trained Keras model from a run folder and load its last checkpoint (or the checkpoint
    kept after `epoch`, `train --keep-epochs`)."""
    run = RunDir(Path(run_dir))
    run.require_trained()
    weights = run.checkpoint_file if epoch is None else run.kept_weights(epoch)
    cfg = run.config()
    words, lowercase = run.vocab()
    import_export_libs()
    from recipe_repl.train.model import build_model

    model = build_model(len(words), cfg.embedding_dim, cfg.units, cfg.dropout, tie=cfg.tie_embeddings)
    try:
        model.load_weights(str(weights))
    except Exception as e:  # h5py/keras raise many kinds; all mean the same to the user
        raise UserError(f"cannot load checkpoint {weights}: {e}") from None
    return LoadedRun(run, cfg, words, lowercase, model, weights)


def build_step_model(trained: Any, vocab_len: int, embedding_dim: int, units: int) -> Any:
    """The stateful inference model: (tokens, h0, c0) → (logits, h, c), weights copied from `trained`
    (a tied model's output layer folded into a plain Dense layer: the same graph either way)."""
    import keras
    from keras import layers
    from recipe_repl.train.model import inference_weights

    tokens = keras.Input(shape=(None,), dtype="int32", name=contract.TOKENS_INPUT)
    h0 = keras.Input(shape=(units,), dtype="float32", name="h0")
    c0 = keras.Input(shape=(units,), dtype="float32", name="c0")
    emb = layers.Embedding(vocab_len, embedding_dim, name="embedding")
    lstm = layers.LSTM(units, return_sequences=True, return_state=True, use_cudnn=False, name="lstm")
    dense = layers.Dense(vocab_len, name="logits")
    seq, h, c = lstm(emb(tokens), initial_state=[h0, c0])
    model = keras.Model([tokens, h0, c0], [dense(seq), h, c], name="recipe_lstm_step")
    weights = inference_weights(trained)
    for layer in (emb, lstm, dense):
        layer.set_weights(weights[layer.name])
    return model


def to_onnx(step_model: Any, units: int) -> Any:
    """Convert the step model with tf2onnx.from_function; outputs ordered logits, h, c."""
    tf, _, tf2onnx = import_export_libs()
    signature = [
        tf.TensorSpec([None, None], tf.int32, name=contract.TOKENS_INPUT),
        tf.TensorSpec([None, units], tf.float32, name="h0"),
        tf.TensorSpec([None, units], tf.float32, name="c0"),
    ]

    @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]  # TensorFlow ships no types
    def step(tokens: Any, h0: Any, c0: Any) -> Any:
        logits, h, c = step_model([tokens, h0, c0], training=False)
        return {contract.LOGITS_OUTPUT: logits, "h": h, "c": c}

    model, _ = tf2onnx.convert.from_function(step, input_signature=signature, opset=OPSET)
    _order_outputs(model, [contract.LOGITS_OUTPUT, "h", "c"])
    check_native_lstm(model)
    return model


def to_onnx_stateless(trained: Any) -> Any:
    """The lecture's way: tokens → softmax probabilities, no state, via tf2onnx.convert.from_keras."""
    tf, keras, tf2onnx = import_export_libs()
    tokens = keras.Input(shape=(None,), dtype="int32", name=contract.TOKENS_INPUT)
    probs = keras.layers.Softmax(name="probs")(trained(tokens))
    wrapped = keras.Model(tokens, probs)
    spec = [tf.TensorSpec([None, None], tf.int32, name=contract.TOKENS_INPUT)]
    model, _ = tf2onnx.convert.from_keras(wrapped, input_signature=spec, opset=OPSET)
    if len(model.graph.output) != 1:
        raise UserError("stateless export: expected one output")
    _rename_output(model, model.graph.output[0].name, "probs")
    return model


def op_types(model: Any) -> list[str]:
    """All node op types of the graph, including those inside subgraphs."""
    out = []

    def walk(graph: Any) -> None:
        for node in graph.node:
            out.append(node.op_type)
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    return out


def check_native_lstm(model: Any) -> None:
    """Raise UserError unless the graph has exactly one ONNX LSTM node and no Loop/Scan/CudnnRNN."""
    ops = op_types(model)
    bad = sorted({op for op in ops if op in ("Loop", "Scan") or "Cudnn" in op})
    if ops.count("LSTM") != 1 or bad:
        raise UserError(f"export produced no native ONNX LSTM (LSTM nodes: {ops.count('LSTM')}, "
                        f"unwanted ops: {', '.join(bad) or 'none'})")


def _order_outputs(model: Any, names: list[str]) -> None:
    by_name = {o.name: o for o in model.graph.output}
    if set(by_name) != set(names):
        raise UserError(f"export produced outputs {sorted(by_name)}, expected {names}")
    ordered = [type(by_name[n])() for n in names]
    for new, n in zip(ordered, names, strict=True):
        new.CopyFrom(by_name[n])
    del model.graph.output[:]
    model.graph.output.extend(ordered)


def _rename_output(model: Any, old: str, new: str) -> None:
    if old == new:
        return
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    for out in model.graph.output:
        if out.name == old:
            out.name = new
