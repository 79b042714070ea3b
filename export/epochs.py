"""`recipe-repl train --keep-epochs [K|LIST]`: after every K-th epoch (or the epochs of a list such as
1,2,4,8,last), keep the checkpoint and export it to ONNX.

Each kept epoch gets `RUN/epochs/epoch-NNN.weights.h5` (a copy of the checkpoint just written) and
`RUN/epochs/epoch-NNN.onnx`, exported by `export_run` with the same parity check as `recipe-repl
export` (held-out logits, prompt at once vs word by word, greedy tokens Keras vs ONNX). The
validation recipes are read once per run, not per epoch. `:compare-models RUN/epochs/*.onnx` then
shows how the model learned; `recipe-repl export RUN --epoch E` exports a kept checkpoint again
(say, quantized).

This lives in `export/` because it exports: the layering puts export above train, so the train
command picks it up by name when `--keep-epochs` is given.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from recipe_repl.export.exporter import HeldOut, export_run
from recipe_repl.train.callbacks import Callback
from recipe_repl.train.keep_epochs import KeepEpochs
from recipe_repl.train.rundir import RunDir

from recipe_repl.base import atomic
from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean


@contextlib.contextmanager
def _quiet_tensorflow_log() -> Iterator[None]:
    """TensorFlow's Python logger warns, converting mid-training, that it cannot serialize the text
    vectorizer's lookup table (which the exported graph does not hold): not the user's concern."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class EpochExporter(Callback):
    """Keeps and exports every `every`-th epoch's checkpoint into the run folder's `epochs/`."""

    def __init__(self, run_dir: Path, every: int | KeepEpochs = 1, stream: IO[str] | None = None,
                 quiet: bool = False):
        if isinstance(every, int) and every < 1:
            raise UserError("--keep-epochs must be at least 1 (keep every K-th epoch)")
        self.run = RunDir(Path(run_dir))
        self.keep = every if isinstance(every, KeepEpochs) else KeepEpochs(every=every)
        self.quiet = quiet
        self.total = 0  # the run's last epoch, for `last`
        self.stream = stream or sys.stderr
        self.kept: list[Path] = []  # the ONNX files written, in order
        self.seconds: list[float] = []  # what each export cost
        self._held: HeldOut | None = None

    def on_train_begin(self, epochs: int, start_epoch: int) -> None:
        self.total = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if not self.keep.keeps(epoch, self.total):
            return
        t0 = time.perf_counter()
        weights = self.run.epoch_weights(epoch)
        with atomic.atomic_path(weights, suffix=".weights.h5", parents=True) as tmp:
            shutil.copyfile(self.run.checkpoint_file, tmp)
        out = self.run.epoch_model(epoch)
        with _quiet_tensorflow_log():
            result = export_run(self.run.path, out, epoch=epoch, held=self._held, quiet=True)
        self._held = result.held
        seconds = time.perf_counter() - t0
        self.kept.append(out)
        self.seconds.append(seconds)
        if not self.quiet:
            diff = result.parity.get("max_abs_logit_diff")
            figure = f"parity max|Δlogits| {diff:.1e}, " if isinstance(diff, float) else ""
            print(clean(f"kept epoch {epoch}: {out} ({figure}{seconds:.1f} s)"), file=self.stream, flush=True)
