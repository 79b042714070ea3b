"""Model: from token ids to next-word logits, and the words behind the ids.

    vocab     Vocabulary: the tokenizer and detokenizer that give Keras TextVectorization's ids exactly
    contract  the ONNX model-file contract (inputs, outputs, metadata keys) shared with export/
    engine    Engine, the interface, and OnnxEngine: a model file opened through ONNX Runtime and checked
    stepping  one token per row per call after the prompt (I/O bindings for a stateful model)
    onnx_proto    a bounded pure-Python reader of the ONNX file's graph, weights and metadata
    lstm_weights  the LSTM's weights found in that graph and checked against the contract
    numpy_lstm    the same LSTM in NumPy: every gate, the gradient, units held at a value (NumpyEngine)
    ngram         the Kneser–Ney 3-gram `eval` fits, from the counts `export` stores in the file

Nothing here samples, renders or knows about plugins: `generate/` turns these logits into words.
"""
