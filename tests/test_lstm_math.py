"""The LSTM recomputed from its ONNX file: the protobuf reader, the weights, NumPy forward and backward.

The forward must equal ONNX Runtime's logits, h and c; the backward must equal finite differences
here (and TensorFlow's gradient on the same weights in tests/test_lstm_tf.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recipe_repl.export.random_model import build_paren_lstm, build_random_lstm, write_lstm

from recipe_repl.base.errors import ModelError, UserError
from recipe_repl.generate import cells, gates
from recipe_repl.generate.lstm_model import check_against, lstm_model
from recipe_repl.model.engine import OnnxEngine, RecurrentState
from recipe_repl.model.lstm_weights import read_lstm_weights
from recipe_repl.model.numpy_lstm import Intervention, NumpyEngine, forward, input_gradients, log_softmax
from recipe_repl.model.onnx_proto import read_model
from tests.conftest import WORDS

TEXT = "recipe for roast chicken | mix salt ( 1 / 2 cup ) and pepper . bake until golden brown"


def random_state(engine: OnnxEngine, rows: int, seed: int = 3) -> RecurrentState:
    rng = np.random.default_rng(seed)
    units = engine.roles.state_shapes[0][0]
    return RecurrentState(((rng.standard_normal((rows, units)) * 0.5).astype(np.float32),
                           rng.standard_normal((rows, units)).astype(np.float32)))


def assert_forward_equals_ort(path: Path, rows: int = 3, words: int = 40) -> None:
    """NumPy forward from a non-zero state equals ONNX Runtime's logits, h and c (to 1e-5)."""
    engine = OnnxEngine(path)
    model = lstm_model(engine)
    tokens = np.random.default_rng(5).integers(0, len(engine.vocab), (rows, words))
    state = random_state(engine, rows)
    logits, after = engine.forward(tokens, state)
    run = forward(model.weights, tokens, *state.arrays)
    np.testing.assert_allclose(run.logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run.h[:, -1], after.arrays[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run.c[:, -1], after.arrays[1], rtol=1e-5, atol=1e-5)


def test_the_reader_gives_the_initializers_onnx_wrote(random_model):
    import onnx
    from onnx import numpy_helper

    graph = read_model(random_model)
    written = onnx.load(str(random_model))
    assert [n.op_type for n in graph.nodes] == [n.op_type for n in written.graph.node]
    assert graph.inputs == ("tokens", "h0", "c0") and graph.outputs == ("logits", "h", "c")
    for tensor in written.graph.initializer:
        np.testing.assert_array_equal(graph.initializers[tensor.name].array(), numpy_helper.to_array(tensor))
    assert graph.metadata == {p.key: p.value for p in written.metadata_props}
    lstm = next(n for n in graph.nodes if n.op_type == "LSTM")
    assert lstm.attributes == {"hidden_size": 16}


def test_numpy_forward_equals_onnx_runtime(random_model, tmp_path):
    assert_forward_equals_ort(random_model)
    assert_forward_equals_ort(build_paren_lstm(tmp_path / "paren.onnx", WORDS))
    assert_forward_equals_ort(build_random_lstm(tmp_path / "wide.onnx", WORDS, embedding_dim=5, units=24, seed=4))


def test_gate_order_is_onnx_i_o_f_c(tmp_path):
    """A unit whose forget gate alone is shut (ONNX's third block) erases its cell at every word."""
    H, D, V = 4, 3, len(WORDS)
    B = np.zeros((1, 8 * H), np.float32)
    B[0, 0 * H + 1] = 9.0  # i open
    B[0, 1 * H + 1] = 9.0  # o open
    B[0, 2 * H + 1] = -9.0  # f shut
    B[0, 3 * H + 1] = 2.0  # c: the candidate
    zeros = {"E": np.zeros((V, D), np.float32), "W": np.zeros((1, 4 * H, D), np.float32),
             "R": np.zeros((1, 4 * H, H), np.float32), "B": B, "Wd": np.zeros((H, V), np.float32),
             "bd": np.zeros(V, np.float32)}
    engine = OnnxEngine(write_lstm(tmp_path / "gates.onnx", WORDS, zeros))
    found = gates.unit_gates(lstm_model(engine), [5, 6, 7], 1)
    np.testing.assert_allclose(found.f, 1 / (1 + np.exp(9)), rtol=1e-5)
    np.testing.assert_allclose(found.i, found.o, rtol=1e-6)
    np.testing.assert_allclose(found.g, np.tanh(2.0), rtol=1e-6)
    np.testing.assert_allclose(found.c, found.i * np.tanh(2.0) + found.f * found.c_before, rtol=1e-6)
    _, state = engine.forward(np.array([[5, 6, 7]]), engine.start(1))
    assert state.arrays[1][0, 1] == pytest.approx(found.c[-1], rel=1e-5)


def test_gates_reproduce_onnx_runtime_h_and_c(random_model):
    engine = OnnxEngine(random_model)
    ids = engine.vocab.encode(TEXT)
    [trace] = cells.trace(engine, [ids])
    for unit in (0, 7, 15):
        found = gates.unit_gates(lstm_model(engine), ids, unit)
        np.testing.assert_allclose(found.c, trace.c[:, unit], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(found.h, trace.h[:, unit], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(found.kept + found.written, found.c, atol=1e-6)
        np.testing.assert_allclose(found.h, found.o * np.tanh(found.c), atol=1e-6)


def log_p(weights, ids: list[int], k: int, embeddings: np.ndarray | None = None,
          intervention: Intervention | None = None) -> float:
    run = forward(weights, np.array([ids[:k - 1]]), intervention=intervention,
                  embeddings=None if embeddings is None else embeddings[None, :k - 1])
    return float(log_softmax(run.logits[0, -1])[ids[k - 1]])


@pytest.mark.parametrize("intervention", [None, Intervention("c", ((3, 0.0), (9, 1.5)), 2),
                                          Intervention("h", ((4, 0.0),), 1)])
def test_gradient_equals_finite_differences(random_model, intervention):
    engine = OnnxEngine(random_model)
    weights = lstm_model(engine).weights.as_float64()
    ids = engine.vocab.encode("recipe for roast chicken | mix salt and pepper")
    targets = [9, 4, 2]
    grads = input_gradients(weights, ids, targets, intervention=intervention)
    base = weights.E[ids]
    eps = 1e-6
    for row, k in enumerate(targets):
        numeric = np.zeros_like(grads[row])
        for j in range(k - 1):
            for d in range(base.shape[1]):
                up, down = base.copy(), base.copy()
                up[j, d] += eps
                down[j, d] -= eps
                numeric[j, d] = (log_p(weights, ids, k, up, intervention)
                                 - log_p(weights, ids, k, down, intervention)) / (2 * eps)
        np.testing.assert_allclose(grads[row], numeric, atol=1e-6)
        assert not grads[row, k - 1:].any()  # nothing from the word itself or after it
    times = input_gradients(weights, ids, targets, intervention=intervention, times_input=True)
    np.testing.assert_allclose(times, (grads * base[None, :-1]).sum(-1), atol=1e-12)
    reach = input_gradients(weights, ids, targets, intervention=intervention, reach=3)
    for row, k in enumerate(targets):
        np.testing.assert_allclose(reach[row, max(0, k - 4):], grads[row, max(0, k - 4):], atol=1e-12)
        assert not reach[row, :max(0, k - 4)].any()


def test_numpy_engine_generates_what_onnx_runtime_generates(random_model, plugins):
    from recipe_repl.base.settings import Settings
    from recipe_repl.generate.loop import Request, generate

    engine = OnnxEngine(random_model)
    twin = NumpyEngine(lstm_model(engine).weights, engine.vocab, engine.info)
    settings = Settings(seed=4, max_tokens=30)

    def run(e):
        return [s.token_ids for s in generate(e, [Request("recipe for roast", key=k) for k in range(3)], settings,
                                              plugins.processor_specs())]

    assert run(twin) == run(engine)


def test_int8_output_is_read_dequantized_and_int8_lstm_is_refused(random_model, tmp_path):
    from recipe_repl.export.quantize import write_quantized

    out = OnnxEngine(write_quantized(random_model, tmp_path / "q.onnx", "int8-output"))
    model = lstm_model(out)
    assert model.weights.int8_output and "int8" in model.note()
    tokens = np.array([[3, 4, 5, 6]])
    _, state = out.forward(tokens, out.start(1))
    run = forward(model.weights, tokens)
    np.testing.assert_allclose(run.h[:, -1], state.arrays[0], rtol=1e-5, atol=1e-5)
    full = OnnxEngine(write_quantized(random_model, tmp_path / "q8.onnx", "int8"))
    with pytest.raises(ModelError, match="quantized to int8"):
        lstm_model(full)


def test_malformed_files_are_one_model_error(random_model, tmp_path):
    data = random_model.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    for path in (cut, junk):
        with pytest.raises(ModelError, match="is not a readable ONNX file") as info:
            read_lstm_weights(path, len(WORDS), 16)
        assert "\n" not in str(info.value)


def test_external_data_is_refused_and_its_path_never_read(random_model, tmp_path):
    import onnx

    model = onnx.load(str(random_model))
    target = next(t for t in model.graph.initializer if t.name == "R")
    target.data_location = onnx.TensorProto.EXTERNAL
    entry = target.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    path = tmp_path / "external.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match="external file"):
        read_lstm_weights(path, len(WORDS), 16)


def test_a_graph_that_computes_something_else_is_refused(random_model, tmp_path):
    """Weights found by structure are checked by what they compute: a logits bias subtracted, not added."""
    import onnx

    model = onnx.load(str(random_model))
    next(n for n in model.graph.node if n.op_type == "Add").op_type = "Sub"
    path = tmp_path / "sub.onnx"
    path.write_bytes(model.SerializeToString())
    engine = OnnxEngine(path)
    with pytest.raises(ModelError, match="do not reproduce what ONNX Runtime computes"):
        lstm_model(engine)
    weights = read_lstm_weights(random_model, len(WORDS), 16)
    assert check_against(weights, OnnxEngine(random_model)) < 1e-5


def test_wrong_sizes_and_other_graphs(random_model, tmp_path):
    with pytest.raises(ModelError, match="hidden_size 16, but the state has 8 units"):
        read_lstm_weights(random_model, len(WORDS), 8)
    with pytest.raises(ModelError, match="no single embedding table"):
        read_lstm_weights(random_model, len(WORDS) + 1, 16)
    stateless = OnnxEngine(build_random_lstm(tmp_path / "s.onnx", WORDS, stateless=True),
                           vocab_path=_vocab(tmp_path))
    with pytest.raises(UserError, match="need a stateful model"):
        lstm_model(stateless)


def _vocab(tmp_path: Path) -> Path:
    import json

    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(WORDS), encoding="utf-8")
    return path
