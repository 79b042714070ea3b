"""The NumPy LSTM against a real trained model: its forward equals ONNX Runtime's, its gradient TensorFlow's,
and the 3-gram the export stores is the one `eval` fits (TensorFlow trains the tiny model: slow)."""

from __future__ import annotations

import numpy as np
import pytest

from recipe_repl.generate.lstm_model import lstm_model
from recipe_repl.model import contract, ngram
from recipe_repl.model.engine import OnnxEngine, RecurrentState
from recipe_repl.model.numpy_lstm import forward, input_gradients
from recipe_repl.model.onnx_proto import read_model
from tests.tiny import export_tiny_onnx

pytestmark = pytest.mark.slow


def test_numpy_forward_equals_onnx_runtime_on_a_trained_model(tiny_onnx):
    engine = OnnxEngine(tiny_onnx)
    model = lstm_model(engine)
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, len(engine.vocab), (4, 50))
    state = RecurrentState(tuple((rng.standard_normal((4, 32)) * 0.5).astype(np.float32) for _ in range(2)))
    for start in (engine.start(4), state):
        logits, after = engine.forward(tokens, start)
        run = forward(model.weights, tokens, *start.arrays)
        np.testing.assert_allclose(run.logits, logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(run.h[:, -1], after.arrays[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(run.c[:, -1], after.arrays[1], rtol=1e-5, atol=1e-5)


def test_gradient_equals_tensorflow_on_the_same_weights(tiny_run_dir, tiny_onnx):
    """d log p(word k) / d embedding of each earlier word: NumPy on the weights read from the ONNX file,
    TensorFlow's GradientTape on the trained Keras model they were exported from."""
    import tensorflow as tf
    from recipe_repl.export.convert import load_run

    keras_model = load_run(tiny_run_dir).model
    engine = OnnxEngine(tiny_onnx)
    ids = engine.vocab.encode("recipe for a cake | mix the flour and the sugar , then bake in the oven until done .")
    targets = [len(ids), 12, 5]
    numpy_grads = input_gradients(lstm_model(engine).weights, ids, targets)
    embedding, lstm, dense = (keras_model.get_layer(n) for n in ("embedding", "lstm", "logits"))
    for row, k in enumerate(targets):
        x = embedding(tf.constant([ids[:k - 1]], tf.int32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = dense(lstm(x, training=False))
            logp = tf.nn.log_softmax(logits[0, -1])[ids[k - 1]]
        want = tape.gradient(logp, x).numpy()[0]
        np.testing.assert_allclose(numpy_grads[row, :k - 1], want, rtol=1e-4, atol=1e-4)
        assert np.abs(want).max() > 1e-3  # a real gradient, not zeros


def test_the_export_stores_the_3gram_eval_fits(tiny_onnx):
    from recipe_repl.export.evaluate import target_sequence
    from recipe_repl.export.kneser_ney import KneserNey3
    from recipe_repl.train.preprocess import load_split

    engine = OnnxEngine(tiny_onnx)
    value = read_model(tiny_onnx, metadata_only=True).metadata[contract.META_NGRAM]
    stored = ngram.decode(value, len(engine.vocab), "tiny.onnx")
    training, seq_len = engine.info.training, int(engine.info.config["seq_len"])
    _, split = load_split(training["data"], training["val_split"], training["seed"])
    fitted = KneserNey3(len(engine.vocab)).fit(target_sequence(engine.vocab, t, seq_len) for t in split.train)
    for text in split.val:
        seq = target_sequence(engine.vocab, text, seq_len)
        padded = [-1, -1, *seq]
        want = [np.log(fitted.distribution(padded[i - 2], padded[i - 1])[padded[i]]) for i in range(3, len(padded))]
        np.testing.assert_allclose(stored.logprob(seq), want, rtol=1e-12)


def test_an_int8_output_export_is_read_dequantized(tiny_run_dir, tmp_path):
    engine = OnnxEngine(export_tiny_onnx(tiny_run_dir, tmp_path / "q.onnx", quantize="int8-output"))
    model = lstm_model(engine)
    assert model.weights.int8_output
    tokens = np.array([[2, 3, 4, 5, 6]])
    logits, state = engine.forward(tokens, engine.start(1))
    run = forward(model.weights, tokens)
    np.testing.assert_allclose(run.h[:, -1], state.arrays[0], rtol=1e-5, atol=1e-5)
    assert np.abs(run.logits - logits).max() < 0.1  # ONNX Runtime also quantizes h on the fly


def test_the_counts_can_be_added_to_an_older_file(tiny_onnx, tmp_path):
    """`python -m recipe_repl.export.ngram_counts` stores what the export stores."""
    import onnx
    from recipe_repl.export.ngram_counts import main

    model = onnx.load(str(tiny_onnx))
    stored = {p.key: p.value for p in model.metadata_props}
    kept = [p for p in model.metadata_props if p.key != contract.META_NGRAM]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    older = tmp_path / "older.onnx"
    older.write_bytes(model.SerializeToString())
    assert contract.META_NGRAM not in read_model(older, metadata_only=True).metadata
    assert main([str(older), "--out", str(tmp_path / "added.onnx")]) == 0
    added = read_model(tmp_path / "added.onnx", metadata_only=True).metadata
    assert added[contract.META_NGRAM] == stored[contract.META_NGRAM]
    assert main([str(tmp_path / "missing.onnx")]) == 2
