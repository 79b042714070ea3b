"""The compiled train and evaluation steps (TensorFlow), under any tf.distribute strategy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from recipe_repl.train import preprocess


class Steps:
    """Compiled train and evaluation steps; the train step works under any tf.distribute strategy.

    Loss = sum(cross-entropy × weight) / sum(weight) over the *global* batch: each replica divides
    its own sum by the all-reduced weight total, and the optimizer sums gradients across replicas.
    """

    def __init__(self, tf: Any, keras: Any, model: Any, optimizer: Any, strategy: Any, jit_compile: bool,
                 sampled: int = 0) -> None:
        self.tf, self.model, self.optimizer, self.strategy = tf, model, optimizer, strategy
        spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None, None], tf.float32))
        loss_sum = self._sampled_loss(tf, model, sampled) if sampled else self._full_loss(tf, model)

        def replica_step(x: Any, y: Any, w: Any) -> tuple[Any, Any]:
            ctx = tf.distribute.get_replica_context()
            with tf.GradientTape() as tape:
                local_sum = loss_sum(x, y, w)
                local_w = tf.reduce_sum(w)
                total_w = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local_w)
                loss = local_sum / tf.maximum(total_w, 1.0)
                scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return local_sum, local_w

        def dist_step(batch: Any) -> tuple[Any, Any]:
            ls, ws = strategy.run(replica_step, args=batch)
            return (strategy.reduce(tf.distribute.ReduceOp.SUM, ls, axis=None),
                    strategy.reduce(tf.distribute.ReduceOp.SUM, ws, axis=None))

        self._jit = jit_compile
        self._raw_dist_step = dist_step
        self._dist_step: Any = None  # compiled on first use with the distributed dataset's element_spec

        @tf.function(input_signature=spec, reduce_retracing=True)  # type: ignore[untyped-decorator]
        def eval_step(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any, Any]:
            logits = tf.cast(model(x, training=False), tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            return tf.reduce_sum(ce * w), tf.reduce_sum(w), tf.reduce_sum(ce), tf.cast(tf.size(ce), tf.float32)

        self._spec = spec
        self._eval_step = eval_step

    @staticmethod
    def _full_loss(tf: Any, model: Any) -> Any:
        """Sum of weighted cross-entropies over the whole vocabulary (the lecture's loss)."""
        def loss_sum(x: Any, y: Any, w: Any) -> Any:
            logits = model(x, training=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
            return tf.reduce_sum(ce * w)

        return loss_sum

    @staticmethod
    def _sampled_loss(tf: Any, model: Any, sampled: int) -> Any:
        """Sum of weighted sampled-softmax losses: each real position against its target and `sampled`
        words drawn log-uniformly (the vocabulary is sorted by frequency), so the output layer costs
        sampled/vocab of its full price. Padding positions are left out before the output layer."""
        from recipe_repl.train.model import output_layer

        features, weights = output_layer(model)
        vocab = int(model.output.shape[-1])
        num = min(sampled, vocab - 1)

        def loss_sum(x: Any, y: Any, w: Any) -> Any:
            feats = features(x, training=True)
            real = w > 0
            inputs = tf.cast(tf.boolean_mask(feats, real), tf.float32)
            labels = tf.cast(tf.boolean_mask(y, real), tf.int64)[:, None]
            table, bias = weights()
            ce = tf.nn.sampled_softmax_loss(weights=tf.cast(table, tf.float32), biases=tf.cast(bias, tf.float32),
                                            labels=labels, inputs=inputs, num_sampled=num, num_classes=vocab)
            return tf.reduce_sum(ce * tf.boolean_mask(w, real))

        return loss_sum

    def train_epoch(self, batches: list[preprocess.Batch]) -> Iterator[tuple[float, float]]:
        """Run one epoch's train steps; yield each step's (loss sum, weight sum)."""
        tf = self.tf
        ds = tf.data.Dataset.from_generator(lambda: preprocess.iterate(batches), output_signature=self._spec)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        ds = ds.with_options(options).prefetch(2)
        dist = self.strategy.experimental_distribute_dataset(ds)
        if self._dist_step is None:  # one trace for all batch shapes: the signature leaves both dims open
            self._dist_step = tf.function(self._raw_dist_step, input_signature=[dist.element_spec],
                                          jit_compile=self._jit or None)
        for batch in dist:
            ls, ws = self._dist_step(batch)
            yield float(ls), float(ws)

    def evaluate(self, ids: np.ndarray, batch_size: int) -> tuple[float, float]:
        """(masked, unmasked) mean cross-entropy on full-length batches of `ids`."""
        m = mw = u = un = 0.0
        for b in preprocess.fixed_batches(ids, batch_size, mask=True, shuffle_seed=None):
            a, aw, c, cn = self._eval_step(b.x, b.y, b.w)
            m, mw, u, un = m + float(a), mw + float(aw), u + float(c), un + float(cn)
        return m / max(mw, 1.0), u / max(un, 1.0)
