"""Build small stateful LSTM ONNX files with random weights, without TensorFlow (fast test models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recipe_repl.model import contract


def build_random_lstm(
    path: Path,
    words: list[str],
    embedding_dim: int = 8,
    units: int = 16,
    seed: int = 0,
    scale: float = 1.0,
    metadata: dict[str, str] | None = None,
    stateless: bool = False,
) -> Path:
    """Write a stateful tokens/h0/c0 → logits/h/c model that follows the runtime contract.

    With `stateless=True` the same weights make a lecture-style file instead: int64 tokens → softmax
    probabilities, no state inputs, no metadata but the vocabulary (as `--vocab` would give it).
    """
    rng = np.random.default_rng(seed)
    vocab = len(words)
    H, D = units, embedding_dim

    def init(shape: tuple[int, ...]) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {"E": init((vocab, D)), "W": init((1, 4 * H, D)), "R": init((1, 4 * H, H)), "B": init((1, 8 * H)),
               "Wd": init((H, vocab)), "bd": init((vocab,))}
    return write_lstm(path, words, weights, metadata, stateless)


def build_paren_lstm(path: Path, words: list[str], unit: int = 5, units: int = 12, embedding_dim: int = 6,
                     seed: int = 0, metadata: dict[str, str] | None = None) -> Path:
    """A hand-set LSTM whose memory cell `unit` counts open parentheses: it rises at "(", holds, and
    drops to 0 at ")"; every other unit has small random weights (a test model for `:cells find`).

    ONNX orders the gates i, o, f, c. Two embedding dimensions carry "(" and ")"; unit `unit` reads
    only them: input gate open at "(", forget gate shut at ")", output gate always open.
    """
    rng = np.random.default_rng(seed)
    vocab, H, D = len(words), units, embedding_dim
    E = (rng.standard_normal((vocab, D)) * 0.5).astype(np.float32)
    E[:, :2] = 0.0
    E[words.index("("), 0] = 1.0
    E[words.index(")"), 1] = 1.0
    W = (rng.standard_normal((1, 4 * H, D)) * 0.5).astype(np.float32)
    R = (rng.standard_normal((1, 4 * H, H)) * 0.3).astype(np.float32)
    B = np.zeros((1, 8 * H), np.float32)
    i, o, f, c = (g * H + unit for g in range(4))
    for row in (i, o, f, c):
        W[0, row, :] = 0.0
        R[0, row, :] = 0.0
    W[0, i, 0], B[0, i] = 16.0, -8.0  # input gate: open at "(" only
    B[0, o] = 8.0  # output gate: open
    W[0, f, 1], B[0, f] = -16.0, 8.0  # forget gate: keeps, but forgets at ")"
    W[0, c, 0] = 3.0  # what "(" writes: tanh(3) ≈ 1
    weights = {"E": E, "W": W, "R": R, "B": B, "Wd": (rng.standard_normal((H, vocab)) * 0.5).astype(np.float32),
               "bd": np.zeros(vocab, np.float32)}
    return write_lstm(path, words, weights, metadata)


def write_lstm(path: Path, words: list[str], weights: dict[str, np.ndarray],
               metadata: dict[str, str] | None = None, stateless: bool = False) -> Path:
    """Write tokens/h0/c0 → logits/h/c (or, `stateless`, the lecture's tokens → probabilities) with these
    weights: E [vocab, D], W [1, 4H, D], R [1, 4H, H], B [1, 8H] (ONNX LSTM, gates i o f c), Wd [H, vocab], bd."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    vocab = len(words)
    D = int(weights["E"].shape[1])
    H = int(weights["R"].shape[2])
    inits = [
        *(numpy_helper.from_array(np.asarray(weights[n], np.float32), n) for n in ("E", "W", "R", "B", "Wd", "bd")),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "ax0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
    ]
    nodes = [
        helper.make_node("Gather", ["E", "tokens"], ["emb"]),
        helper.make_node("Transpose", ["emb"], ["x"], perm=[1, 0, 2]),
        helper.make_node("Unsqueeze", ["h0", "ax0"], ["h0u"]),
        helper.make_node("Unsqueeze", ["c0", "ax0"], ["c0u"]),
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0u", "c0u"], ["Y", "Yh", "Yc"], hidden_size=H),
        helper.make_node("Squeeze", ["Y", "ax1"], ["ys"]),
        helper.make_node("Transpose", ["ys"], ["yb"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["yb", "Wd"], ["mm"]),
        helper.make_node("Add", ["mm", "bd"], ["logits"]),
        helper.make_node("Squeeze", ["Yh", "ax0"], ["h"]),
        helper.make_node("Squeeze", ["Yc", "ax0"], ["c"]),
    ]
    if stateless:
        return _stateless(path, nodes, inits, words, H, vocab, metadata)
    graph = helper.make_graph(
        nodes,
        "random_lstm",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT32, ["batch", "time"]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["batch", H]),
            helper.make_tensor_value_info("c0", TensorProto.FLOAT, ["batch", H]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "time", vocab]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", H]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, ["batch", H]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        contract.META_FORMAT: contract.FORMAT_VERSION,
        contract.META_VOCAB: json.dumps(words),
        contract.META_CONFIG: json.dumps({"vocab_size": vocab, "embedding_dim": D, "units": H}),
        contract.META_TRAINING: json.dumps({"corpus": "random weights (test)"}),
        contract.META_OUTPUT_KIND: "logits",
    }
    meta.update(metadata or {})
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return Path(path)


def _stateless(path, nodes, inits, words, H, vocab, metadata) -> Path:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    zeros = numpy_helper.from_array(np.zeros((1, 1, H), dtype=np.float32), "z")
    nodes = [n for n in nodes if n.op_type != "Unsqueeze" and not (n.op_type == "Squeeze" and n.input[0] != "Y")]
    for n in nodes:
        if n.op_type == "LSTM":
            del n.input[5:]  # no initial state: zeros
        if n.op_type == "Gather":
            n.input[1] = "tok32"
    nodes = [
        helper.make_node("Cast", ["input_1"], ["tok32"], to=TensorProto.INT32),
        *nodes,
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "lecture_style",
        [helper.make_tensor_value_info("input_1", TensorProto.INT64, ["batch", "time"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", "time", vocab])],
        [i for i in inits if i.name not in ("ax0",)] + [zeros],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return Path(path)
