"""The lecture's model: Embedding → LSTM(return_sequences) → Dense(vocab) giving logits.

One option changes the training graph but not what is exported: **tied embeddings** (Press & Wolf
2016), where the output layer is the embedding table itself (`logits = f · Eᵀ + b`), reached from
the LSTM through a linear projection when the LSTM is wider than the embedding. The export folds
the projection and the table into one plain Dense(vocab) layer (`W = P·Eᵀ`, `b' = b_P·Eᵀ + b`), so
the ONNX file has exactly the contract's graph either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# Layer names the export and the sampled-softmax loss look up.
EMBEDDING, LSTM, PROJECTION, LOGITS = "embedding", "lstm", "projection", "logits"


def build_model(vocab_len: int, embedding_dim: int, units: int, dropout: float = 0.0,
                seed: int | None = None, tie: bool = False) -> Any:
    """Keras functional model: int32 tokens [batch, time] → float32 logits [batch, time, vocab].

    No `mask_zero` on the Embedding (it would turn the exported LSTM into an ONNX Loop); the loss
    masks padding instead. Dropout, when asked for, sits after the embedding and after the LSTM
    (not on the recurrent connection), so inference is the plain lecture graph. `tie` shares the
    embedding table with the output layer (through a projection when units != embedding_dim).
    """
    import keras
    from keras import layers

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    embedding = _tied_embedding(vocab_len, embedding_dim) if tie else layers.Embedding(
        vocab_len, embedding_dim, name=EMBEDDING)
    x = embedding(tokens)
    if dropout:
        x = layers.Dropout(dropout, seed=seed, name="embedding_dropout")(x)
    x = layers.LSTM(units, return_sequences=True, name=LSTM)(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed, name="lstm_dropout")(x)
    if tie:
        if units != embedding_dim:
            x = layers.Dense(embedding_dim, name=PROJECTION)(x)
        logits = embedding(x, reverse=True)
    else:
        logits = layers.Dense(vocab_len, dtype="float32", name=LOGITS)(x)
    return keras.Model(tokens, logits, name="recipe_lstm")


def _tied_embedding(vocab_len: int, embedding_dim: int) -> Any:
    """An Embedding that also reads vectors back out as logits over the vocabulary (`reverse=True`)."""
    import keras
    from keras import layers, ops

    class TiedEmbedding(layers.Embedding):  # type: ignore[misc]  # Keras ships no types
        """Embedding(tokens) → vectors; reverse: vectors → vectors · tableᵀ + bias (the output layer)."""

        def build(self, input_shape: Any = None) -> None:
            super().build(input_shape)
            self.reverse_bias = self.add_weight(shape=(self.input_dim,), initializer="zeros", name="reverse_bias")

        def call(self, inputs: Any, reverse: bool = False) -> Any:
            if not reverse:
                return super().call(inputs)
            table = ops.cast(self.embeddings, inputs.dtype)
            return ops.cast(ops.matmul(inputs, ops.transpose(table)), "float32") + self.reverse_bias

        # Keras' Embedding saves its table only; the output bias is saved beside it.
        def save_own_variables(self, store: Any) -> None:
            store["0"], store["1"] = self.embeddings, self.reverse_bias

        def load_own_variables(self, store: Any) -> None:
            self.embeddings.assign(store["0"])
            self.reverse_bias.assign(store["1"])

        def compute_output_spec(self, inputs: Any, reverse: bool = False) -> Any:
            if not reverse:
                return super().compute_output_spec(inputs)
            return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), dtype="float32")

    return TiedEmbedding(vocab_len, embedding_dim, name=EMBEDDING)


def is_tied(model: Any) -> bool:
    """Whether the model's output layer is its embedding table."""
    return not any(layer.name == LOGITS for layer in model.layers)


def output_layer(model: Any) -> tuple[Any, Callable[[], tuple[Any, Any]]]:
    """(features model, weights): the model up to the output layer's input, and a function giving the
    output layer's (weights [vocab, features], bias [vocab]) as live tensors (for the sampled softmax)."""
    import keras

    if is_tied(model):
        emb = model.get_layer(EMBEDDING)
        last = PROJECTION if any(layer.name == PROJECTION for layer in model.layers) else _before_output(model)
        features = keras.Model(model.inputs, model.get_layer(last).output)
        return features, lambda: (emb.embeddings, emb.reverse_bias)
    dense = model.get_layer(LOGITS)
    features = keras.Model(model.inputs, dense.input)

    def weights() -> tuple[Any, Any]:
        import tensorflow as tf

        return tf.transpose(dense.kernel), dense.bias

    return features, weights


def _before_output(model: Any) -> str:
    """The name of the layer whose output feeds the tied output layer (the LSTM, or its dropout)."""
    names = [layer.name for layer in model.layers]
    return "lstm_dropout" if "lstm_dropout" in names else LSTM


def inference_weights(model: Any) -> dict[str, list[np.ndarray]]:
    """The weights of the plain inference graph (Embedding, LSTM, Dense(vocab)) for any trained model:
    a tied model's projection and table folded into the Dense layer's kernel [units, vocab] and bias."""
    emb_weights = [np.asarray(w, np.float64) for w in model.get_layer(EMBEDDING).get_weights()]
    table = emb_weights[0]
    out = {EMBEDDING: [table.astype(np.float32)], LSTM: model.get_layer(LSTM).get_weights()}
    if not is_tied(model):
        out[LOGITS] = model.get_layer(LOGITS).get_weights()
        return out
    bias = emb_weights[1]  # the tied layer's weights: table, output bias
    if any(layer.name == PROJECTION for layer in model.layers):
        p_kernel, p_bias = (np.asarray(w, np.float64) for w in model.get_layer(PROJECTION).get_weights())
        kernel, bias = p_kernel @ table.T, p_bias @ table.T + bias
    else:
        kernel = table.T
    out[LOGITS] = [kernel.astype(np.float32), bias.astype(np.float32)]
    return out


def compiled_forward(model: Any) -> Callable[[Any], Any]:
    """`model(tokens, training=False)` as one traced tf.function (eager Keras LSTM calls are ~100× slower)."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([None, None], tf.int32)])

    def forward(tokens: Any) -> np.ndarray:
        return np.asarray(fn(tf.constant(np.asarray(tokens, np.int32))), np.float32)

    return forward
