"""Model: from token ids to next-word logits, and the words behind the ids.

    vocab     Vocabulary: the tokenizer and detokenizer that give Keras TextVectorization's ids exactly
    contract  the ONNX model-file contract (inputs, outputs, metadata keys) shared with export/
    engine    Engine, the interface, and OnnxEngine: a model file opened through ONNX Runtime and checked
    stepping  one token per row per call after the prompt (I/O bindings for a stateful model)

Nothing here samples, renders or knows about plugins: `generate/` turns these logits into words.
"""
