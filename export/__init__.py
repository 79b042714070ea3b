"""Export: tf2onnx conversion, parity check, quantization and metadata (needs the `train` extra)."""
