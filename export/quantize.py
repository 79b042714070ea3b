"""Dynamic int8 quantization (onnxruntime.quantization.quantize_dynamic) of an exported model."""

from __future__ import annotations

import tempfile
from pathlib import Path


def quantize_int8(model_bytes: bytes) -> bytes:
    """Int8 weights for MatMul/Gather/LSTM, activations quantized at run time; returns the new model."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model_bytes)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return dst.read_bytes()
