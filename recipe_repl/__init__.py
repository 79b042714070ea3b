"""recipe-repl: a word-level LSTM that writes recipes, played with in a terminal REPL over ONNX Runtime."""

__version__ = "0.1.0"
