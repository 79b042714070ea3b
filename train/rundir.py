"""The run folder: everything an export needs, under fixed names, each written atomically."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe_repl.train.config import TrainConfig

from recipe_repl.base import atomic, reading
from recipe_repl.base.errors import UserError

LOG_FIELDS = [
    "epoch", "loss", "val_loss", "val_perplexity", "val_loss_unmasked", "tokens_per_s", "seconds",
]


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"  # TrainConfig

    @property
    def vocab_file(self) -> Path:
        return self.path / "vocab.json"  # {"words": [...], "lowercase": "ascii"|"unicode"}

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.weights.h5"  # model weights after the last completed epoch

    @property
    def optimizer_file(self) -> Path:
        return self.path / "optimizer.npz"  # optimizer variables + the epoch they belong to

    @property
    def log_file(self) -> Path:
        return self.path / "log.csv"  # one row per completed epoch

    @property
    def corpus_file(self) -> Path:
        return self.path / "corpus.json"  # corpus name, counts, split sizes

    @property
    def training_file(self) -> Path:
        return self.path / "training.json"  # summary written at the end of training

    @property
    def curve_file(self) -> Path:
        return self.path / "loss_curve.png"

    @property
    def epochs_dir(self) -> Path:
        return self.path / "epochs"  # `train --keep-epochs`: a checkpoint and an ONNX file per kept epoch

    def epoch_weights(self, epoch: int) -> Path:
        return self.epochs_dir / f"epoch-{epoch:03d}.weights.h5"

    def epoch_model(self, epoch: int) -> Path:
        return self.epochs_dir / f"epoch-{epoch:03d}.onnx"

    def kept_epochs(self) -> list[int]:
        """The epochs whose checkpoints `--keep-epochs` kept, in order."""
        found = []
        for f in self.epochs_dir.glob("epoch-*.weights.h5") if self.epochs_dir.is_dir() else []:
            number = f.name.removeprefix("epoch-").removesuffix(".weights.h5")
            if number.isdigit():
                found.append(int(number))
        return sorted(found)

    def kept_weights(self, epoch: int) -> Path:
        """The checkpoint kept after `epoch`, or a UserError listing the kept ones."""
        path = self.epoch_weights(epoch)
        if not path.is_file():
            kept = self.kept_epochs()
            have = (f"kept: {', '.join(map(str, kept))}" if kept
                    else "none kept: train with --keep-epochs to keep them")
            raise UserError(f"{self.path} has no checkpoint of epoch {epoch} ({have})")
        return path

    # --- reading -------------------------------------------------------------------------------

    def require_trained(self) -> None:
        """Raise UserError unless this folder holds a finished-enough run to export."""
        if not self.path.is_dir():
            raise UserError(f"run folder not found: {self.path}")
        for f in (self.config_file, self.vocab_file, self.checkpoint_file):
            if not f.exists():
                raise UserError(f"{self.path} is not a training run folder (missing {f.name})")

    def config(self) -> TrainConfig:
        return TrainConfig.load(self.config_file)

    def vocab(self) -> tuple[list[str], str]:
        data = reading.read_json(self.vocab_file, reading.VOCAB)
        words = data.get("words") if isinstance(data, dict) else None
        lowercase = data.get("lowercase", "ascii") if isinstance(data, dict) else None
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words) or not isinstance(lowercase, str):
            raise UserError(f"cannot read {self.vocab_file}: expected {{\"words\": [strings], \"lowercase\": ...}}")
        return words, lowercase

    def log_rows(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        with self.log_file.open(newline="", encoding="utf-8") as f:
            return [{k: (float(v) if k != "epoch" else int(v)) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]

    def json(self, path: Path) -> dict[str, Any]:
        data = reading.read_json(path, reading.RUN_FILE) if path.exists() else {}
        if not isinstance(data, dict):
            raise UserError(f"cannot read {path}: expected a JSON object")
        return data

    def own_files(self) -> list[Path]:
        """The files a training run writes here (a user's other files in the folder are never touched)."""
        return [self.config_file, self.vocab_file, self.checkpoint_file, self.optimizer_file, self.log_file,
                self.corpus_file, self.training_file, self.curve_file, self.path / "first_epoch.json",
                self.epochs_dir]

    # --- one run at a time ---------------------------------------------------------------------

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"  # held by the training run using this folder; holds its pid

    @property
    def previous_dir(self) -> Path:
        return self.path / ".previous-run"  # the run that --fresh replaces, until the new one has a checkpoint

    @contextlib.contextmanager
    def claim(self, fresh: bool = False, say: Callable[[str], None] = print) -> Iterator[Callable[[], None]]:
        """Hold this folder for one training run; a second run here fails at once, naming this one's pid.

        With `fresh`, the previous run's files are moved aside, not deleted: the caller calls the
        yielded function once the new run's first checkpoint is written, which deletes them; if the
        run fails before that, they are put back.
        """
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = (f"{self.path.parent} is not a folder" if isinstance(exc, FileExistsError | NotADirectoryError)
                   else exc.strerror or str(exc))
            raise UserError(f"cannot create run folder {self.path}: {why}") from None
        with contextlib.ExitStack() as stack:
            if created:  # runs last: a run that wrote nothing leaves no empty folder behind
                stack.callback(_remove_if_empty, self.path)
            try:
                stack.enter_context(atomic.file_lock(self.lock_file, timeout=0, note=str(os.getpid())))
            except atomic.Locked as exc:
                raise UserError(f"{self.path} is in use by another training run (pid {exc.holder or 'unknown'}); "
                                "wait for it to finish or choose another --out") from None
            except OSError as exc:
                raise UserError(f"cannot write in run folder {self.path}: {exc.strerror or exc}") from None
            self._recover(say)
            if fresh:
                self._set_aside()
            try:
                yield self._drop_previous
            except BaseException:
                if self.previous_dir.exists():
                    self._restore(self.previous_dir)
                    say(f"the previous run in {self.path} is kept (the new one stopped before its first checkpoint)")
                raise
            self._drop_previous()

    def _set_aside(self) -> None:
        files = [f for f in self.own_files() if f.exists()]
        if not files:
            return
        partial = self.path / ".previous-run.partial"  # renamed once complete: a kill mid-way is recoverable
        partial.mkdir()
        for f in files:
            os.replace(f, partial / f.name)
        os.replace(partial, self.previous_dir)

    def _restore(self, aside: Path, remove_new: bool = True) -> None:
        if remove_new:  # the new run's files go: the folder is the previous run again
            for f in self.own_files():
                if f.is_dir():
                    shutil.rmtree(f)
                else:
                    f.unlink(missing_ok=True)
        for f in aside.iterdir():
            os.replace(f, self.path / f.name)
        aside.rmdir()

    def _drop_previous(self) -> None:
        if self.previous_dir.exists():
            shutil.rmtree(self.previous_dir)

    def _recover(self, say: Callable[[str], None]) -> None:
        """A --fresh run killed outright leaves the previous run aside: keep whichever has a checkpoint."""
        partial = self.path / ".previous-run.partial"
        if partial.exists():  # killed while moving: nothing new was written yet, put everything back
            self._restore(partial, remove_new=False)
        if not self.previous_dir.exists():
            return
        if self.checkpoint_file.exists():
            self._drop_previous()
        else:
            self._restore(self.previous_dir)
            say(f"restored the previous run in {self.path}: a --fresh run was stopped before its first checkpoint")

    # --- writing -------------------------------------------------------------------------------

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

    def write_log(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the whole CSV log (small) atomically: an interrupted write never leaves half a row."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic.write_text(self.log_file, buf.getvalue())


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
