"""The run folder: everything an export needs, under fixed names, each written atomically."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from recipe_repl.train.config import TrainConfig

from recipe_repl import atomic
from recipe_repl.errors import UserError

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

    # --- reading -------------------------------------------------------------------------------

    def require_trained(self) -> None:
        """Raise UserError unless this folder holds a finished-enough run to export."""
        if not self.path.is_dir():
            raise UserError(f"run folder not found: {self.path}")
        for f in (self.config_file, self.vocab_file, self.checkpoint_file):
            if not f.exists():
                raise UserError(f"{self.path} is not a training run folder (missing {f.name})")

    def config(self) -> TrainConfig:
        try:
            return TrainConfig.load(self.config_file)
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"cannot read {self.config_file}: {e}") from None

    def vocab(self) -> tuple[list[str], str]:
        try:
            data = json.loads(self.vocab_file.read_text(encoding="utf-8"))
            return list(data["words"]), str(data.get("lowercase", "ascii"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"cannot read {self.vocab_file}: {e}") from None

    def log_rows(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        with self.log_file.open(newline="", encoding="utf-8") as f:
            return [{k: (float(v) if k != "epoch" else int(v)) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]

    def json(self, path: Path) -> dict:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def clear(self) -> None:
        """Remove the files of a previous run (only the names this module writes; nothing else)."""
        for f in (self.config_file, self.vocab_file, self.checkpoint_file, self.optimizer_file, self.log_file,
                  self.corpus_file, self.training_file, self.curve_file, self.path / "first_epoch.json"):
            f.unlink(missing_ok=True)

    # --- writing -------------------------------------------------------------------------------

    def write_json(self, path: Path, data: dict) -> None:
        atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

    def write_log(self, rows: list[dict]) -> None:
        """Rewrite the whole CSV log (small) atomically: an interrupted write never leaves half a row."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic.write_text(self.log_file, buf.getvalue())
