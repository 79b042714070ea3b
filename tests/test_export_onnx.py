"""Export of a real tiny model: native LSTM node, I/O contract, metadata, parity, atomic writes, int8, stateless."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from recipe_repl.export.convert import op_types

from recipe_repl.base.errors import UserError
from recipe_repl.model import contract
from recipe_repl.model.vocab import Vocabulary
from tests.tiny import export_tiny_onnx

pytestmark = pytest.mark.slow


def _meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_lstm_is_a_native_onnx_node(tiny_onnx: Path):
    ops = op_types(onnx.load(str(tiny_onnx)))
    assert ops.count("LSTM") == 1
    assert "Loop" not in ops and "Scan" not in ops and not any("Cudnn" in op for op in ops)


def test_io_contract(tiny_onnx: Path):
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    ins = {i.name: i for i in sess.get_inputs()}
    outs = [o.name for o in sess.get_outputs()]
    assert list(ins) == [contract.TOKENS_INPUT, "h0", "c0"]
    assert outs == [contract.LOGITS_OUTPUT, "h", "c"]
    assert ins["tokens"].type == "tensor(int32)" and ins["h0"].type == "tensor(float)"
    assert ins["h0"].shape[1] == 32 and ins["c0"].shape[1] == 32
    x = np.array([[2, 3, 4], [5, 6, 7]], np.int32)
    z = np.zeros((2, 32), np.float32)
    logits, h, c = sess.run(None, {"tokens": x, "h0": z, "c0": z})
    assert logits.shape == (2, 3, 300) and logits.dtype == np.float32
    assert h.shape == c.shape == (2, 32)


def test_metadata(tiny_onnx: Path, tiny_run_dir: Path):
    meta = _meta(tiny_onnx)
    assert meta[contract.META_FORMAT] == contract.FORMAT_VERSION
    assert meta[contract.META_OUTPUT_KIND] == "logits"
    assert meta[contract.META_LOWERCASE] == "ascii"
    words = json.loads(meta[contract.META_VOCAB])
    assert words == json.loads((tiny_run_dir / "vocab.json").read_text())["words"]
    config = json.loads(meta[contract.META_CONFIG])
    assert config | {} == {"vocab_size": 300, "embedding_dim": 16, "units": 32, "layers": 1, "seq_len": 40,
                           "dropout": 0.0}
    training = json.loads(meta[contract.META_TRAINING])
    assert training["corpus"] == "epicurious:epicurious-sample.json" and training["corpus_recipes"] == 29
    assert training["epochs"] == 2 and training["final_val_loss"] > 0 and training["date"]
    parity = json.loads(meta[contract.META_PARITY])
    assert parity["ok"] and parity["max_abs_logit_diff"] <= 1e-4 and parity["greedy_identical"]
    assert parity["greedy_tokens"] == 100 and parity["held_out_source"].startswith("validation split")


def test_prompt_at_once_equals_token_by_token(tiny_onnx: Path):
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    vocab = Vocabulary.from_list(json.loads(_meta(tiny_onnx)[contract.META_VOCAB]))
    ids = np.array([vocab.encode("Recipe for roast chicken | Heat the oven, add salt.")], np.int32)
    z = np.zeros((1, 32), np.float32)
    at_once, h_all, c_all = sess.run(None, {"tokens": ids, "h0": z, "c0": z})
    h, c, steps = z, z, []
    for t in range(ids.shape[1]):
        lg, h, c = sess.run(None, {"tokens": ids[:, t : t + 1], "h0": h, "c0": c})
        steps.append(lg)
    assert np.abs(np.concatenate(steps, 1) - at_once).max() <= 1e-5
    assert np.abs(h - h_all).max() <= 1e-6 and np.abs(c - c_all).max() <= 1e-6


def test_onnx_matches_keras_on_held_out_text(tiny_onnx: Path, tiny_run_dir: Path):
    from recipe_repl.export.convert import load_run

    model = load_run(tiny_run_dir).model
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    vocab = Vocabulary.from_list(json.loads(_meta(tiny_onnx)[contract.META_VOCAB]))
    ids = np.array([vocab.encode("Recipe for spicy noodle soup | Bring the broth to a boil; add noodles.")],
                   np.int32)
    z = np.zeros((1, 32), np.float32)
    got = sess.run(None, {"tokens": ids, "h0": z, "c0": z})[0]
    assert np.abs(got - np.asarray(model(ids))).max() <= 1e-4


def test_parity_failure_leaves_no_file(tiny_run_dir: Path, tmp_path: Path):
    from onnx import numpy_helper

    def damage(model):  # scale the output layer's largest weight tensor a little: a real wrong model
        init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
        arr = numpy_helper.to_array(init) * 1.01
        init.CopyFrom(numpy_helper.from_array(arr.astype(arr.dtype), init.name))

    out = tmp_path / "bad.onnx"
    with pytest.raises(UserError, match="parity check failed, nothing written"):
        export_tiny_onnx(tiny_run_dir, out, _mutate=damage)
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_existing_file_atomically(tiny_run_dir: Path, tmp_path: Path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"old model")
    export_tiny_onnx(tiny_run_dir, out)
    assert onnx.load(str(out)).graph.output[0].name == "logits"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_quantized_int8_reports_top1_agreement(tiny_run_dir: Path, tiny_onnx: Path, tmp_path: Path):
    out = export_tiny_onnx(tiny_run_dir, tmp_path / "int8.onnx", quantize="int8")
    assert out.stat().st_size < tiny_onnx.stat().st_size
    parity = json.loads(_meta(out)[contract.META_PARITY])
    q = parity["quantized"]
    assert 0.5 <= q["top1_agreement"] <= 1.0 and q["positions"] > 0
    assert _meta(out)[contract.META_VOCAB] == _meta(tiny_onnx)[contract.META_VOCAB]
    ops = op_types(onnx.load(str(out)))
    assert any(op in ("DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul") for op in ops)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z = np.zeros((1, 32), np.float32)
    assert sess.run(None, {"tokens": np.array([[2, 3]], np.int32), "h0": z, "c0": z})[0].shape == (1, 2, 300)


def test_stateless_lecture_format(tiny_stateless_onnx: Path, tiny_onnx: Path):
    meta = _meta(tiny_stateless_onnx)
    assert meta[contract.META_OUTPUT_KIND] == "probs"
    sess = ort.InferenceSession(str(tiny_stateless_onnx), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["tokens"]
    assert [o.name for o in sess.get_outputs()] == ["probs"]
    x = np.array([[2, 3, 4, 5]], np.int32)
    probs = sess.run(None, {"tokens": x})[0]
    assert probs.shape == (1, 4, 300)
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    stateful = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    z = np.zeros((1, 32), np.float32)
    logits = stateful.run(None, {"tokens": x, "h0": z, "c0": z})[0].astype(np.float64)
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    assert np.abs(softmax / softmax.sum(-1, keepdims=True) - probs).max() <= 1e-5


def test_export_user_errors(tmp_path: Path, tiny_run_dir: Path):
    from recipe_repl.export.exporter import export_run

    with pytest.raises(UserError, match="run folder not found"):
        export_run(tmp_path / "nope", tmp_path / "x.onnx", quiet=True)
    (tmp_path / "notarun").mkdir()
    with pytest.raises(UserError, match="not a training run folder"):
        export_run(tmp_path / "notarun", tmp_path / "x.onnx", quiet=True)
    with pytest.raises(UserError, match="only 'int8'"):
        export_run(tiny_run_dir, tmp_path / "x.onnx", quantize="int4", quiet=True)
    assert not (tmp_path / "x.onnx").exists()
