"""The lecture's model: Embedding → LSTM(return_sequences) → Dense(vocab) giving logits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def build_model(vocab_len: int, embedding_dim: int, units: int, dropout: float = 0.0,
                seed: int | None = None) -> Any:
    """Keras functional model: int32 tokens [batch, time] → float32 logits [batch, time, vocab].

    No `mask_zero` on the Embedding (it would turn the exported LSTM into an ONNX Loop); the loss
    masks padding instead. Dropout, when asked for, sits after the embedding and after the LSTM
    (not on the recurrent connection), so inference is the plain lecture graph.
    """
    import keras
    from keras import layers

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_len, embedding_dim, name="embedding")(tokens)
    if dropout:
        x = layers.Dropout(dropout, seed=seed, name="embedding_dropout")(x)
    x = layers.LSTM(units, return_sequences=True, name="lstm")(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed, name="lstm_dropout")(x)
    logits = layers.Dense(vocab_len, dtype="float32", name="logits")(x)
    return keras.Model(tokens, logits, name="recipe_lstm")


def compiled_forward(model: Any) -> Callable[[Any], Any]:
    """`model(tokens, training=False)` as one traced tf.function (eager Keras LSTM calls are ~100× slower)."""
    import numpy as np
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([None, None], tf.int32)])

    def forward(tokens: Any) -> np.ndarray:
        return np.asarray(fn(tf.constant(np.asarray(tokens, np.int32))), np.float32)

    return forward
