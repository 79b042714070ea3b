"""The training loop: corpus → vectorizer → batches → masked-loss train steps → callbacks per epoch."""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from recipe_repl.train import checkpoint, preprocess
from recipe_repl.train.callbacks import Callback, Progress, SamplePrinter, plot_loss_curve
from recipe_repl.train.config import TrainConfig
from recipe_repl.train.corpus import Corpus, load_corpus
from recipe_repl.train.rundir import RunDir
from recipe_repl.train.strategy import is_chief, make_strategy

from recipe_repl.errors import UserError
from recipe_repl.sanitize import clean
from recipe_repl.vocab import Vocabulary


def import_tensorflow():
    """TensorFlow and Keras, or a UserError saying which extra to install."""
    try:
        import keras
        import tensorflow as tf
    except ImportError:
        raise UserError("training needs the 'train' extra: pip install 'recipe-repl[train]'") from None
    return tf, keras


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]  # one dict per completed epoch (the CSV rows)
    corpus: Corpus
    first_epoch_losses: dict = field(default_factory=dict)  # masked vs unmasked, epoch 1
    samples: list[str] = field(default_factory=list)


def train(cfg: TrainConfig, out: Path, resume: bool = False, quiet: bool = False,
          stream: IO[str] | None = None, extra_callbacks: list[Callback] | None = None,
          stop_after_steps: int | None = None, fresh: bool = False) -> TrainResult:
    """Train (or resume) a run in folder `out`; returns the history. Progress goes to `stream` (stderr).

    The folder is locked for the whole run: a second run there fails at once. `fresh` replaces a
    run already there, which is kept until the new run's first checkpoint is written (and stays if
    the new run fails before). `stop_after_steps` interrupts the run mid-epoch (as a kill would) —
    for tests of resume.
    """
    if fresh and resume:
        raise UserError("--fresh and --resume contradict each other; pick one")
    stream = stream or sys.stderr
    if not is_chief():  # only the chief writes, and so locks, the run folder
        return _train(cfg, out, resume, quiet, stream, extra_callbacks, stop_after_steps, lambda: None)

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    with RunDir(Path(out)).claim(fresh, say) as keep_new:
        return _train(cfg, out, resume, quiet, stream, extra_callbacks, stop_after_steps, keep_new)


def _train(cfg: TrainConfig, out: Path, resume: bool, quiet: bool, stream: IO[str],
           extra_callbacks: list[Callback] | None, stop_after_steps: int | None,
           checkpoint_written: Callable[[], None]) -> TrainResult:
    tf, keras = import_tensorflow()
    run = RunDir(Path(out))
    if resume:
        if not run.checkpoint_file.exists() or not run.config_file.exists():
            raise UserError(f"nothing to resume in {run.path} (no checkpoint yet)")
        saved = run.config()
        saved.epochs = cfg.epochs  # the only setting a resume may change
        cfg = saved
    elif run.checkpoint_file.exists():
        raise UserError(f"{run.path} already holds a training run; use --resume or another --out")
    _check(cfg)
    if not cfg.mask:
        cfg.bucketing = False  # the lecture's loss counts padding, so keep its fixed-length batches

    strategy = make_strategy(cfg.strategy)
    chief = is_chief()
    corpus = load_corpus(cfg.data)
    lowercase = corpus.lowercase if cfg.lowercase == "auto" else cfg.lowercase
    split = preprocess.split_corpus(corpus, cfg.val_split, cfg.seed)
    train_texts, val_texts = split.train, split.val
    if not val_texts:
        raise UserError("no validation recipes: use a larger corpus or a --val-split above 0")

    keras.utils.set_random_seed(cfg.seed)
    if resume:
        words, lowercase = run.vocab()
        layer = preprocess.make_vectorizer(cfg.vocab_size, cfg.seq_len, words)
    else:
        layer = preprocess.adapt_vectorizer(train_texts, cfg.vocab_size, cfg.seq_len, lowercase)
        words = [str(w) for w in layer.get_vocabulary()]
    vocab = Vocabulary.from_list(words, lowercase=lowercase)
    ids_train = preprocess.vectorize(layer, train_texts, lowercase)
    ids_val = preprocess.vectorize(layer, val_texts, lowercase)

    if chief:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_json(run.config_file, json_safe(cfg))
        run.write_json(run.vocab_file, {"words": words, "lowercase": lowercase})
        run.write_json(run.corpus_file, {
            "name": corpus.name, "read": corpus.read, "used": corpus.used, "skipped": dict(corpus.skipped),
            "train_recipes": len(train_texts), "val_recipes": len(val_texts),
            "train_tokens": int((ids_train != 0).sum()), "report": corpus.report(),
            "per_corpus": {name: {"recipes": len(t) + len(v), "train_recipes": len(t), "val_recipes": len(v)}
                           for name, (t, v) in split.per_corpus.items()},
        })

    policy_before = keras.mixed_precision.global_policy().name
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy(
            "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16")
    try:
        with strategy.scope():
            from recipe_repl.train.model import build_model

            model = build_model(len(words), cfg.embedding_dim, cfg.units, cfg.dropout, cfg.seed)
            optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate)
            if cfg.mixed_precision and tf.config.list_logical_devices("GPU"):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
        start_epoch = 0
        history: list[dict] = []
        if resume:
            start_epoch, _restored = checkpoint.load(model, optimizer, run.checkpoint_file, run.optimizer_file)
            history = [r for r in run.log_rows() if r["epoch"] <= start_epoch]
        steps = _Steps(tf, keras, model, optimizer, strategy, cfg.jit_compile)

        printer = SamplePrinter(model, vocab, stream, cfg.sample_every, cfg.sample_tokens, cfg.seed)
        callbacks: list[Callback] = [] if quiet else [Progress(stream), printer]
        callbacks += extra_callbacks or []
        for cb in callbacks:
            cb.set_model(model, vocab)
        if not quiet:
            print(clean(corpus.report(), keep="\n") + f"\n{split.counts()}, vocabulary {len(words)}", file=stream, flush=True)
        for cb in callbacks:
            cb.on_train_begin(cfg.epochs, start_epoch)

        result = TrainResult(run.path, history, corpus)
        result.first_epoch_losses = run.json(run.path / "first_epoch.json") if resume else {}
        total_steps = 0
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            optimizer.learning_rate.assign(learning_rate(cfg, epoch))
            shuffle_seed = cfg.seed * 1000 + epoch
            if cfg.bucketing:
                batches = preprocess.bucketed_batches(ids_train, cfg.batch_size, shuffle_seed)
            else:
                batches = preprocess.fixed_batches(ids_train, cfg.batch_size, cfg.mask, shuffle_seed)
            for cb in callbacks:
                cb.on_epoch_begin(epoch, len(batches))
            t0 = time.perf_counter()
            loss_sum = weight_sum = 0.0
            real = 0
            for i, (batch, (ls, ws)) in enumerate(zip(batches, steps.train_epoch(batches), strict=True), 1):
                if not math.isfinite(ls):
                    raise _diverged(callbacks, history, epoch, f"step {i}", ls)
                loss_sum += ls
                weight_sum += ws
                real += batch.real_tokens
                total_steps += 1
                elapsed = time.perf_counter() - t0
                for cb in callbacks:
                    cb.on_step(epoch, i, loss_sum / max(weight_sum, 1.0), real / max(elapsed, 1e-9))
                if stop_after_steps is not None and total_steps >= stop_after_steps:
                    raise KeyboardInterrupt(f"stopped after {total_steps} steps (test)")
            seconds = time.perf_counter() - t0
            val_masked, val_unmasked = steps.evaluate(ids_val, cfg.batch_size)
            if not math.isfinite(val_masked):
                raise _diverged(callbacks, history, epoch, "validation", val_masked)
            logs = {
                "epoch": epoch, "loss": loss_sum / max(weight_sum, 1.0), "val_loss": val_masked,
                "val_perplexity": math.exp(min(val_masked, 50.0)), "val_loss_unmasked": val_unmasked,
                "tokens_per_s": real / seconds, "seconds": seconds,
            }
            if epoch == 1:
                train_m, train_u = steps.evaluate(ids_train[: max(1, min(len(ids_train), 512))], cfg.batch_size)
                result.first_epoch_losses = {"train_masked": train_m, "train_unmasked": train_u,
                                             "val_masked": val_masked, "val_unmasked": val_unmasked}
                if chief:
                    run.write_json(run.path / "first_epoch.json", result.first_epoch_losses)
                if not quiet:
                    print(f"epoch 1 loss both ways: masked {val_masked:.4f} / unmasked {val_unmasked:.4f} on "
                          f"validation, masked {train_m:.4f} / unmasked {train_u:.4f} on training recipes "
                          f"(the unmasked loss counts easy padding after the stop token)",
                          file=stream, flush=True)
            history.append(logs)
            if chief:
                checkpoint.save(model, optimizer, epoch, run.checkpoint_file, run.optimizer_file)
                checkpoint_written()
                run.write_log(history)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
        for cb in callbacks:
            cb.on_train_end(history)
        result.samples = printer.samples
        if chief and history:
            last = history[-1]
            run.write_json(run.training_file, {
                "corpus": corpus.name, "corpus_recipes": corpus.used, "train_recipes": len(train_texts),
                "val_recipes": len(val_texts), "epochs": last["epoch"], "final_loss": last["loss"],
                "final_val_loss": last["val_loss"], "final_val_perplexity": last["val_perplexity"],
                "seed": cfg.seed, "val_split": cfg.val_split, "data": cfg.data, "masked_loss": cfg.mask,
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "first_epoch_losses": result.first_epoch_losses,
            })
            plot_loss_curve(history, run.curve_file)
        return result
    finally:
        keras.mixed_precision.set_global_policy(policy_before)


def _diverged(callbacks: list[Callback], history: list[dict], epoch: int, where: str, value: float) -> UserError:
    """The error that stops a run whose loss is no longer a number; the last good checkpoint stays."""
    for cb in callbacks:  # close the progress display before the error line
        cb.on_train_end(history)
    kept = f"the checkpoint of epoch {history[-1]['epoch']} is kept" if history else "no checkpoint was written"
    return UserError(f"training stopped: the loss became {value} in epoch {epoch} ({where}); {kept}. "
                     "Try a lower --learning-rate")


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate for an epoch (1-based): constant, or a cosine from the peak down to 5% of it."""
    if cfg.lr_schedule != "cosine" or cfg.epochs <= 1:
        return cfg.learning_rate
    floor = 0.05
    progress = (epoch - 1) / (cfg.epochs - 1)
    return cfg.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def json_safe(cfg: TrainConfig) -> dict:
    import json

    return json.loads(cfg.to_json())


def _check(cfg: TrainConfig) -> None:
    for name in ("vocab_size", "embedding_dim", "units", "seq_len", "batch_size", "epochs"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.vocab_size < 3:
        raise UserError("--vocab-size must be at least 3 (pad, [UNK] and one word)")
    if not 0.0 <= cfg.val_split < 1.0:
        raise UserError("--val-split must be in [0, 1)")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError("--dropout must be in [0, 1)")
    if not (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
        raise UserError("--learning-rate must be a positive number")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise UserError("--lr-schedule must be constant or cosine")
    if cfg.lowercase not in ("auto", "ascii", "unicode"):
        raise UserError("--lowercase must be auto, ascii or unicode")


class _Steps:
    """Compiled train and evaluation steps; the train step works under any tf.distribute strategy.

    Loss = sum(cross-entropy × weight) / sum(weight) over the *global* batch: each replica divides
    its own sum by the all-reduced weight total, and the optimizer sums gradients across replicas.
    """

    def __init__(self, tf, keras, model, optimizer, strategy, jit_compile: bool):
        self.tf, self.model, self.optimizer, self.strategy = tf, model, optimizer, strategy
        spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None, None], tf.float32))

        def replica_step(x, y, w):
            ctx = tf.distribute.get_replica_context()
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
                local_sum = tf.reduce_sum(ce * w)
                local_w = tf.reduce_sum(w)
                total_w = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local_w)
                loss = local_sum / tf.maximum(total_w, 1.0)
                scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return local_sum, local_w

        def dist_step(batch):
            ls, ws = strategy.run(replica_step, args=batch)
            return (strategy.reduce(tf.distribute.ReduceOp.SUM, ls, axis=None),
                    strategy.reduce(tf.distribute.ReduceOp.SUM, ws, axis=None))

        self._jit = jit_compile
        self._raw_dist_step = dist_step
        self._dist_step = None  # compiled on first use with the distributed dataset's element_spec

        @tf.function(input_signature=spec, reduce_retracing=True)
        def eval_step(x, y, w):
            logits = tf.cast(model(x, training=False), tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            return tf.reduce_sum(ce * w), tf.reduce_sum(w), tf.reduce_sum(ce), tf.cast(tf.size(ce), tf.float32)

        self._spec = spec
        self._eval_step = eval_step

    def train_epoch(self, batches):
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
