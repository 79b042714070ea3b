"""Quantization of the output layer only, the graph clean-up, and the measure the model card reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from recipe_repl.export import quantize
from recipe_repl.export.convert import op_types
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.model import contract
from recipe_repl.model.engine import OnnxEngine
from tests.conftest import WORDS
from tests.tiny import EPICURIOUS_SAMPLE, cached_tiny_run, export_tiny_onnx

pytestmark = pytest.mark.slow


def _run(model_bytes: bytes, tokens: np.ndarray) -> np.ndarray:
    from recipe_repl.export.parity import session

    sess = session(model_bytes)
    z = np.zeros((tokens.shape[0], sess.get_inputs()[1].shape[1]), np.float32)
    return sess.run(None, {"tokens": tokens.astype(np.int32), "h0": z, "c0": z})[0]


def test_simplify_drops_tf2onnx_small_ops_and_keeps_the_outputs(tmp_path_factory, tiny_onnx: Path) -> None:
    from recipe_repl.export import convert

    loaded = convert.load_run(cached_tiny_run(tmp_path_factory))
    cfg = loaded.config
    step = convert.build_step_model(loaded.model, len(loaded.words), cfg.embedding_dim, cfg.units)
    before = convert.to_onnx(step, cfg.units).SerializeToString()  # tf2onnx's graph as it comes
    after = quantize.simplify(before)
    ops_before, ops_after = op_types(onnx.load_from_string(before)), op_types(onnx.load_from_string(after))
    assert len(ops_after) < len(ops_before) and "Shape" not in ops_after and "Less" not in ops_after
    assert ops_after.count("LSTM") == 1 and ops_after.count("MatMul") == 1
    tokens = np.random.default_rng(0).integers(0, 300, (3, 7))
    np.testing.assert_allclose(_run(after, tokens), _run(before, tokens), atol=1e-5)
    assert op_types(onnx.load(str(tiny_onnx))) == ops_after  # what export writes


def test_simplify_leaves_an_already_simple_graph_alone(tmp_path: Path) -> None:
    data = build_random_lstm(tmp_path / "r.onnx", WORDS).read_bytes()
    assert quantize.simplify(data) == data


def test_output_only_quantization_keeps_the_lstm_in_float(tiny_onnx: Path) -> None:
    q = onnx.load_from_string(quantize.quantize_int8(quantize.simplify(tiny_onnx.read_bytes()), "int8-output"))
    ops = op_types(q)
    assert "LSTM" in ops and "DynamicQuantizeLSTM" not in ops  # the recurrent layer stays float32
    assert any(op in ("MatMulInteger", "DynamicQuantizeMatMul") for op in ops)
    with pytest.raises(ValueError, match="unknown quantization"):
        quantize.quantize_int8(tiny_onnx.read_bytes(), "int4")


def test_export_offers_output_only_int8(tmp_path_factory, tmp_path: Path) -> None:
    out = export_tiny_onnx(cached_tiny_run(tmp_path_factory), tmp_path / "q.onnx", quantize="int8-output")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    q = json.loads(meta[contract.META_PARITY])["quantized"]
    assert q["quantization"] == "int8 dynamic, output layer only" and 0.5 <= q["top1_agreement"] <= 1.0
    engine = OnnxEngine(out)  # the runtime's contract check and probe
    assert engine.stateful and engine.can_bind()


def test_measure_reports_speed_and_perplexity_of_both(tiny_onnx: Path, tmp_path: Path) -> None:
    q_path = quantize.write_quantized(tiny_onnx, tmp_path / "q.onnx", "int8-output")
    meta = {p.key: p.value for p in onnx.load(str(q_path)).metadata_props}
    assert meta[contract.META_VOCAB] == {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}[
        contract.META_VOCAB]  # eval reads the vocabulary and the corpus from it
    report = quantize.measure(tiny_onnx, q_path, data=f"epicurious:{EPICURIOUS_SAMPLE}", limit=3)
    for key in ("float32", "quantized"):
        assert report[key]["step_ms"] > 0 and report[key]["perplexity"] > 1 and report[key]["tokens"] > 0
    assert report["speedup"] == pytest.approx(report["float32"]["step_ms"] / report["quantized"]["step_ms"])
    assert report["perplexity_change"] == pytest.approx(
        report["quantized"]["perplexity"] / report["float32"]["perplexity"] - 1)


def test_quantizing_prints_nothing(tiny_onnx: Path) -> None:
    # ONNX Runtime's quantizer warns through the root logger; `export --quantize` must not pass that on
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from recipe_repl.export.quantize import quantize_int8; "
            "[quantize_int8(Path(sys.argv[1]).read_bytes(), s) for s in ('int8', 'int8-output')]")
    r = subprocess.run([sys.executable, "-c", code, str(tiny_onnx)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
