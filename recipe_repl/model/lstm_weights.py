"""The LSTM's weights, read from its ONNX file: embedding, gates, output layer.

An exported model is Embedding → LSTM → Dense (`export/convert.py`, and `export/random_model.py` for
the tests' models): a `Gather` from a [vocab, D] initializer, one native ONNX `LSTM` node, a
`MatMul` by a [H, vocab] initializer and an `Add` of a [vocab] bias. The weights are found by that
structure (not by name: tf2onnx names them after the Keras variables), checked against the
contract's sizes and turned into one layout:

    ONNX:  W [1, 4H, D], R [1, 4H, H], B [1, 8H] = (Wb, Rb), gates stacked i, o, f, c
    here:  Wx [D, 4H], Wh [H, 4H], b [4H] = Wb + Rb, gates stacked i, f, g, o (Keras' order; g is
           the candidate, ONNX's c)

An `export --quantize int8-output` file keeps its output layer in int8 (a `MatMulInteger` by an int8
[H, vocab] initializer with one scale and zero point): it is read dequantized, (q − zero) × scale,
and marked, since ONNX Runtime also quantizes h on the fly and its logits differ a little from
these weights'. An `--quantize int8` file quantizes the LSTM itself (`DynamicQuantizeLSTM`): refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recipe_repl.base.errors import ModelError
from recipe_repl.model.onnx_proto import Graph, Node, Tensor, read_model

GATES = ("i", "f", "g", "o")  # the order of the 4H axis here
_ONNX_ORDER = (0, 2, 3, 1)  # ONNX stacks i, o, f, c: where i, f, c(=g), o sit
_DEFAULT_ACTIVATIONS = (b"Sigmoid", b"Tanh", b"Tanh")


@dataclass(frozen=True)
class LstmWeights:
    """Embedding → LSTM → Dense, float32, gates stacked i, f, g, o along the 4H axis."""

    E: np.ndarray  # [vocab, D]
    Wx: np.ndarray  # [D, 4H]
    Wh: np.ndarray  # [H, 4H]
    b: np.ndarray  # [4H]
    Wout: np.ndarray  # [H, vocab]
    bout: np.ndarray  # [vocab]
    int8_output: bool = False  # the output layer was stored in int8 and is read dequantized

    @property
    def units(self) -> int:
        """H, the LSTM's units."""
        return int(self.Wh.shape[0])

    @property
    def vocab_size(self) -> int:
        """The number of words."""
        return int(self.E.shape[0])

    def as_float64(self) -> LstmWeights:
        """The same weights in float64 (for gradients)."""
        def wide(a: np.ndarray) -> np.ndarray:
            return np.asarray(a, np.float64)

        return LstmWeights(wide(self.E), wide(self.Wx), wide(self.Wh), wide(self.b), wide(self.Wout),
                           wide(self.bout), int8_output=self.int8_output)


def read_lstm_weights(path: Path | str, vocab_size: int, units: int) -> LstmWeights:
    """The weights of the model file at `path`, checked against the vocabulary and state sizes the
    engine found (ModelError with one line when the graph is not the exported Embedding → LSTM → Dense)."""
    graph = read_model(path)
    name = Path(path).name
    try:
        return _weights(graph, vocab_size, units)
    except _NotLstm as exc:
        raise ModelError(f"model {name}: the LSTM views cannot read its weights: {exc}") from None


class _NotLstm(ValueError):
    """The graph is not the exported one; the message says where."""


def _weights(graph: Graph, V: int, H: int) -> LstmWeights:
    if any(n.op_type == "DynamicQuantizeLSTM" for n in graph.nodes):
        raise _NotLstm("its LSTM is quantized to int8 (export --quantize int8); these views need float LSTM "
                       "weights: use the float file or one made with --quantize int8-output")
    lstms = [n for n in graph.nodes if n.op_type == "LSTM" and n.domain in ("", "ai.onnx")]
    if len(lstms) != 1:
        raise _NotLstm(f"it has {len(lstms)} ONNX LSTM nodes, not one")
    lstm = lstms[0]
    _check_attributes(lstm, H)
    inputs = list(lstm.inputs) + [""] * (8 - len(lstm.inputs))
    if inputs[4] or inputs[7]:
        raise _NotLstm("its LSTM takes sequence lengths or peepholes, which the export never writes")
    W = _float(graph, inputs[1], (1, 4 * H, None), "the LSTM's input weights W")
    D = W.shape[2]
    R = _float(graph, inputs[2], (1, 4 * H, H), "the LSTM's recurrent weights R")
    B = _float(graph, inputs[3], (1, 8 * H), "the LSTM's bias B") if inputs[3] else np.zeros((1, 8 * H), np.float32)
    E = _embedding(graph, V, D)
    Wout, int8 = _output_weights(graph, H, V)
    bout = _bias(graph, V)

    def gates(a: np.ndarray) -> np.ndarray:  # [4H, k] in ONNX's i, o, f, c → [k, 4H] in i, f, g, o
        blocks = a.reshape(4, H, -1)
        return np.concatenate([blocks[g] for g in _ONNX_ORDER], axis=0).T.copy()

    bias = (B[0, :4 * H] + B[0, 4 * H:]).reshape(4 * H, 1)
    weights = LstmWeights(E=E, Wx=gates(W[0]), Wh=gates(R[0]), b=gates(bias)[0], Wout=Wout, bout=bout,
                          int8_output=int8)
    for label, array in (("embedding", weights.E), ("LSTM", weights.Wx), ("LSTM", weights.Wh),
                         ("LSTM bias", weights.b), ("output layer", weights.Wout), ("output bias", weights.bout)):
        if not np.isfinite(array).all():
            raise _NotLstm(f"its {label} weights hold NaN or infinite values")
    return weights


def _check_attributes(lstm: Node, H: int) -> None:
    attrs = lstm.attributes
    if attrs.get("hidden_size", H) != H:
        raise _NotLstm(f"its LSTM has hidden_size {attrs.get('hidden_size')}, but the state has {H} units")
    if attrs.get("direction", b"forward") != b"forward":
        raise _NotLstm("its LSTM is not forward-only")
    acts = attrs.get("activations")
    if acts is not None and (not isinstance(acts, tuple)
                             or tuple(a.capitalize() for a in acts if isinstance(a, bytes)) != _DEFAULT_ACTIVATIONS):
        raise _NotLstm("its LSTM uses activations other than sigmoid and tanh")
    for name in ("clip", "input_forget", "layout"):
        if attrs.get(name) not in (None, 0):
            raise _NotLstm(f"its LSTM sets {name!r}, which the export never does")


def _initializer(graph: Graph, name: str, what: str) -> Tensor:
    tensor = graph.initializers.get(name)
    if tensor is None:
        raise _NotLstm(f"{what} ({name!r}) is not a weight stored in the file")
    return tensor


def _float(graph: Graph, name: str, shape: Sequence[int | None], what: str) -> np.ndarray:
    tensor = _initializer(graph, name, what)
    if tensor.data_type != 1:
        raise _NotLstm(f"{what} is not float32")
    if len(tensor.dims) != len(shape) or any(s is not None and d != s for d, s in zip(tensor.dims, shape,
                                                                                      strict=True)):
        want = ", ".join("?" if s is None else str(s) for s in shape)
        raise _NotLstm(f"{what} has shape {list(tensor.dims)}, not [{want}]")
    return tensor.array().astype(np.float32)


def _embedding(graph: Graph, V: int, D: int) -> np.ndarray:
    """The [vocab, D] table a Gather reads the token ids from."""
    found = [n.inputs[0] for n in graph.nodes if n.op_type == "Gather" and n.inputs
             and n.inputs[0] in graph.initializers and graph.initializers[n.inputs[0]].dims == (V, D)]
    if len(found) != 1:
        raise _NotLstm(f"no single embedding table [{V}, {D}] read by a Gather (found {len(found)})")
    return _float(graph, found[0], (V, D), "the embedding")


def _output_weights(graph: Graph, H: int, V: int) -> tuple[np.ndarray, bool]:
    """The Dense layer's [H, vocab] kernel: float32, or int8 dequantized (and True)."""
    float_ones = [n.inputs[1] for n in graph.nodes if n.op_type == "MatMul" and len(n.inputs) == 2
                  and n.inputs[1] in graph.initializers and graph.initializers[n.inputs[1]].dims == (H, V)]
    if len(float_ones) == 1:
        return _float(graph, float_ones[0], (H, V), "the output layer"), False
    quantized = [n for n in graph.nodes if n.op_type == "MatMulInteger" and len(n.inputs) == 4
                 and n.inputs[1] in graph.initializers and graph.initializers[n.inputs[1]].dims == (H, V)]
    if len(float_ones) == 0 and len(quantized) == 1:
        node = quantized[0]
        q = _initializer(graph, node.inputs[1], "the int8 output layer")
        zero = _initializer(graph, node.inputs[3], "the output layer's zero point")
        scales = [t for t in graph.initializers.values()
                  if t.name == node.inputs[1].removesuffix("_quantized") + "_scale" and t.data_type == 1]
        if q.data_type != 3 or zero.data_type != 3 or zero.dims not in ((), (1,)) or len(scales) != 1 \
                or scales[0].dims not in ((), (1,)):
            raise _NotLstm("its int8 output layer is not one int8 matrix with one scale and zero point")
        scale = float(scales[0].array().reshape(-1)[0])
        dequantized = (q.array().astype(np.float32) - float(zero.array().reshape(-1)[0])) * np.float32(scale)
        return dequantized.astype(np.float32), True
    raise _NotLstm(f"no single output layer [{H}, {V}] (a MatMul by a stored weight)")


def _bias(graph: Graph, V: int) -> np.ndarray:
    found = [name for n in graph.nodes if n.op_type == "Add" for name in n.inputs
             if name in graph.initializers and graph.initializers[name].dims == (V,)]
    if len(found) > 1:
        raise _NotLstm(f"several [{V}] biases are added; the output layer has one")
    return _float(graph, found[0], (V,), "the output bias") if found else np.zeros(V, np.float32)
