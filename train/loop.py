"""The training loop: corpus → vectorizer → batches → masked-loss train steps → callbacks per epoch."""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from recipe_repl.train import checkpoint, preprocess
from recipe_repl.train.callbacks import Callback, Progress, SamplePrinter, plot_loss_curve
from recipe_repl.train.config import TrainConfig
from recipe_repl.train.corpus import Corpus
from recipe_repl.train.rundir import RunDir
from recipe_repl.train.steps import Steps
from recipe_repl.train.strategy import is_chief, make_strategy

from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean
from recipe_repl.model.vocab import Vocabulary


def import_tensorflow(verbose: bool = False) -> tuple[Any, Any]:
    """TensorFlow and Keras, or a UserError saying which extra to install; import notices off unless `verbose`."""
    from recipe_repl.train.tf_env import import_quietly

    try:
        import_quietly(verbose)
        import keras
        import tensorflow as tf
    except ImportError:
        raise UserError("training needs the 'train' extra: pip install 'recipe-repl[train]'") from None
    return tf, keras


@dataclass
class TrainResult:
    """What a run did: its folder, one CSV row per completed epoch, the corpus, the samples."""

    run_dir: Path
    history: list[dict[str, Any]]  # one dict per completed epoch (the CSV rows)
    corpus: Corpus
    first_epoch_losses: dict[str, float] = field(default_factory=dict)  # masked vs unmasked, epoch 1
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


@dataclass
class Prepared:
    """A run's data: the corpus, its split, the vocabulary and the token ids of both halves."""

    corpus: Corpus
    split: preprocess.Split
    words: list[str]
    lowercase: str
    ids_train: np.ndarray
    ids_val: np.ndarray

    @property
    def vocab(self) -> Vocabulary:
        """The runtime's view of the vocabulary (for the per-epoch samples)."""
        return Vocabulary.from_list(self.words, lowercase=self.lowercase)


def _train(cfg: TrainConfig, out: Path, resume: bool, quiet: bool, stream: IO[str],
           extra_callbacks: list[Callback] | None, stop_after_steps: int | None,
           checkpoint_written: Callable[[], None]) -> TrainResult:
    """Prepare the data, build the model, fit it epoch by epoch, record the run."""
    tf, keras = import_tensorflow()
    run = RunDir(Path(out))
    cfg = _settle_config(cfg, run, resume)
    strategy = make_strategy(cfg.strategy)
    chief = is_chief()
    data = prepare_data(cfg, run, resume, keras)
    if chief:
        _write_run_files(run, cfg, data)
    policy_before = keras.mixed_precision.global_policy().name
    try:
        model, optimizer = build(tf, keras, cfg, strategy, len(data.words))
        start_epoch, history = 0, []
        if resume:
            start_epoch, _restored = checkpoint.load(model, optimizer, run.checkpoint_file, run.optimizer_file)
            history = [r for r in run.log_rows() if r["epoch"] <= start_epoch]
        printer = SamplePrinter(model, data.vocab, stream, cfg.sample_every, cfg.sample_tokens, cfg.seed)
        callbacks: list[Callback] = ([] if quiet else [Progress(stream), printer]) + (extra_callbacks or [])
        for cb in callbacks:
            cb.set_model(model, data.vocab)
        if not quiet:
            print(clean(data.corpus.report(), keep="\n") + f"\n{data.split.counts()}, vocabulary {len(data.words)}",
                  file=stream, flush=True)
        result = TrainResult(run.path, history, data.corpus)
        result.first_epoch_losses = run.json(run.path / "first_epoch.json") if resume else {}
        steps = Steps(tf, keras, model, optimizer, strategy, cfg.jit_compile, cfg.sampled_softmax)
        fitter = _Fit(cfg, run, data, steps, optimizer,
                      callbacks, stream, quiet, chief, checkpoint_written, stop_after_steps)
        fitter.fit(result, start_epoch)
        result.samples = printer.samples
        if chief and history:
            record(run, cfg, data, result)
        return result
    finally:
        keras.mixed_precision.set_global_policy(policy_before)


def _settle_config(cfg: TrainConfig, run: RunDir, resume: bool) -> TrainConfig:
    """The settings the run goes by: a resumed run's own (only --epochs may change), checked."""
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
    return cfg


def prepare_data(cfg: TrainConfig, run: RunDir, resume: bool, keras: Any) -> Prepared:
    """Load and split the corpus, build (or, resuming, reload) the vocabulary, and vectorize both halves."""
    corpus, split = preprocess.load_split(cfg.data, cfg.val_split, cfg.seed, cfg.clean)
    lowercase = corpus.lowercase if cfg.lowercase == "auto" else cfg.lowercase
    if not split.val:
        raise UserError("no validation recipes: use a larger corpus or a --val-split above 0")
    keras.utils.set_random_seed(cfg.seed)
    if resume:
        words, lowercase = run.vocab()
        layer = preprocess.make_vectorizer(cfg.vocab_size, cfg.seq_len, words)
    else:
        layer = preprocess.adapt_vectorizer(split.train, cfg.vocab_size, cfg.seq_len, lowercase)
        words = [str(w) for w in layer.get_vocabulary()]
    return Prepared(corpus, split, words, lowercase, preprocess.vectorize(layer, split.train, lowercase),
                    preprocess.vectorize(layer, split.val, lowercase))


def _write_run_files(run: RunDir, cfg: TrainConfig, data: Prepared) -> None:
    """The settings, vocabulary and corpus facts an export and a resume need."""
    corpus, split = data.corpus, data.split
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_json(run.config_file, json_safe(cfg))
    run.write_json(run.vocab_file, {"words": data.words, "lowercase": data.lowercase})
    run.write_json(run.corpus_file, {
        "name": corpus.name, "read": corpus.read, "used": corpus.used, "skipped": dict(corpus.skipped),
        "train_recipes": len(split.train), "val_recipes": len(split.val),
        "train_tokens": int((data.ids_train != 0).sum()), "report": corpus.report(),
        "per_corpus": {name: {"recipes": len(t) + len(v), "train_recipes": len(t), "val_recipes": len(v)}
                       for name, (t, v) in split.per_corpus.items()},
    })


def build(tf: Any, keras: Any, cfg: TrainConfig, strategy: Any, vocab_len: int) -> tuple[Any, Any]:
    """The model and its optimizer, under the strategy (and the mixed-precision policy, when asked)."""
    from recipe_repl.train.model import build_model

    gpu = bool(tf.config.list_logical_devices("GPU"))
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    with strategy.scope():
        model = build_model(vocab_len, cfg.embedding_dim, cfg.units, cfg.dropout, cfg.seed, cfg.tie_embeddings)
        optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate)
        if cfg.mixed_precision and gpu:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    return model, optimizer


@dataclass
class _Fit:
    """The epoch loop: train steps, validation, checkpoint, callbacks."""

    cfg: TrainConfig
    run: RunDir
    data: Prepared
    steps: Steps
    optimizer: Any
    callbacks: list[Callback]
    stream: IO[str]
    quiet: bool
    chief: bool
    checkpoint_written: Callable[[], None]
    stop_after_steps: int | None
    total_steps: int = 0

    def fit(self, result: TrainResult, start_epoch: int) -> None:
        """Run the epochs after `start_epoch`, appending each one's logs to `result.history`."""
        for cb in self.callbacks:
            cb.on_train_begin(self.cfg.epochs, start_epoch)
        for epoch in range(start_epoch + 1, self.cfg.epochs + 1):
            logs = self.epoch(epoch, result.history)
            if epoch == 1:
                self.first_epoch(result, logs)
            result.history.append(logs)
            if self.chief:
                checkpoint.save(self.steps.model, self.optimizer, epoch, self.run.checkpoint_file,
                                self.run.optimizer_file)
                self.checkpoint_written()
                self.run.write_log(result.history)
            for cb in self.callbacks:
                cb.on_epoch_end(epoch, logs)
        for cb in self.callbacks:
            cb.on_train_end(result.history)

    def epoch(self, epoch: int, history: list[dict[str, Any]]) -> dict[str, Any]:
        """One epoch of train steps and the validation loss; its logs (a CSV row)."""
        cfg = self.cfg
        self.optimizer.learning_rate.assign(learning_rate(cfg, epoch))
        shuffle_seed = cfg.seed * 1000 + epoch
        if cfg.bucketing:
            batches = preprocess.bucketed_batches(self.data.ids_train, cfg.batch_size, shuffle_seed)
        else:
            batches = preprocess.fixed_batches(self.data.ids_train, cfg.batch_size, cfg.mask, shuffle_seed)
        if cfg.word_dropout:
            separator = self.data.words.index("|") if "|" in self.data.words else -1
            batches = preprocess.drop_words(batches, cfg.word_dropout, separator, shuffle_seed + 7)
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, len(batches))
        t0 = time.perf_counter()
        loss_sum = weight_sum = 0.0
        real = 0
        for i, (batch, (ls, ws)) in enumerate(zip(batches, self.steps.train_epoch(batches), strict=True), 1):
            if not math.isfinite(ls):
                raise _diverged(self.callbacks, history, epoch, f"step {i}", ls)
            loss_sum += ls
            weight_sum += ws
            real += batch.real_tokens
            self.total_steps += 1
            elapsed = time.perf_counter() - t0
            for cb in self.callbacks:
                cb.on_step(epoch, i, loss_sum / max(weight_sum, 1.0), real / max(elapsed, 1e-9))
            if self.stop_after_steps is not None and self.total_steps >= self.stop_after_steps:
                raise KeyboardInterrupt(f"stopped after {self.total_steps} steps (test)")
        seconds = time.perf_counter() - t0
        val_masked, val_unmasked = self.steps.evaluate(self.data.ids_val, cfg.batch_size)
        if not math.isfinite(val_masked):
            raise _diverged(self.callbacks, history, epoch, "validation", val_masked)
        return {
            "epoch": epoch, "loss": loss_sum / max(weight_sum, 1.0), "val_loss": val_masked,
            "val_perplexity": math.exp(min(val_masked, 50.0)), "val_loss_unmasked": val_unmasked,
            "tokens_per_s": real / seconds, "seconds": seconds,
        }

    def first_epoch(self, result: TrainResult, logs: dict[str, Any]) -> None:
        """After epoch 1, the loss both ways (masked and the lecture's unmasked), kept and shown."""
        ids = self.data.ids_train
        train_m, train_u = self.steps.evaluate(ids[: max(1, min(len(ids), 512))], self.cfg.batch_size)
        val_masked, val_unmasked = logs["val_loss"], logs["val_loss_unmasked"]
        result.first_epoch_losses = {"train_masked": train_m, "train_unmasked": train_u,
                                     "val_masked": val_masked, "val_unmasked": val_unmasked}
        if self.chief:
            self.run.write_json(self.run.path / "first_epoch.json", result.first_epoch_losses)
        if not self.quiet:
            print(f"epoch 1 loss both ways: masked {val_masked:.4f} / unmasked {val_unmasked:.4f} on "
                  f"validation, masked {train_m:.4f} / unmasked {train_u:.4f} on training recipes "
                  f"(the unmasked loss counts easy padding after the stop token)", file=self.stream, flush=True)


def record(run: RunDir, cfg: TrainConfig, data: Prepared, result: TrainResult) -> None:
    """training.json (the facts an export puts into the model file) and the loss curve."""
    last = result.history[-1]
    run.write_json(run.training_file, {
        "corpus": data.corpus.name, "corpus_recipes": data.corpus.used, "train_recipes": len(data.split.train),
        "val_recipes": len(data.split.val), "epochs": last["epoch"], "final_loss": last["loss"],
        "final_val_loss": last["val_loss"], "final_val_perplexity": last["val_perplexity"],
        "seed": cfg.seed, "val_split": cfg.val_split, "data": cfg.data, "clean": cfg.clean, "masked_loss": cfg.mask,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "first_epoch_losses": result.first_epoch_losses,
    })
    plot_loss_curve(result.history, run.curve_file)


def _diverged(callbacks: list[Callback], history: list[dict[str, Any]], epoch: int, where: str, value: float) -> UserError:
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


def json_safe(cfg: TrainConfig) -> dict[str, Any]:
    """The settings as plain JSON values."""
    import json

    data: dict[str, Any] = json.loads(cfg.to_json())
    return data


def _check(cfg: TrainConfig) -> None:
    for name in ("vocab_size", "embedding_dim", "units", "seq_len", "batch_size", "epochs"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.vocab_size < 3:
        raise UserError("--vocab-size must be at least 3 (pad, [UNK] and one word)")
    if not 0.0 <= cfg.val_split < 1.0:
        raise UserError("--val-split must be in [0, 1)")
    if cfg.sampled_softmax < 0:
        raise UserError("--sampled-softmax must be 0 (the full softmax) or a number of sampled words")
    if not 0.0 <= cfg.word_dropout < 1.0:
        raise UserError("--word-dropout must be in [0, 1)")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError("--dropout must be in [0, 1)")
    if not (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
        raise UserError("--learning-rate must be a positive number")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise UserError("--lr-schedule must be constant or cosine")
    if cfg.lowercase not in ("auto", "ascii", "unicode"):
        raise UserError("--lowercase must be auto, ascii or unicode")


