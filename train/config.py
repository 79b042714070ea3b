"""Training settings: one dataclass, a comment on each field (read from CLI flags, saved as run/config.json)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from recipe_repl.base import reading
from recipe_repl.base.errors import UserError

# Every weight of the model travels in one ONNX file, which holds 2 GB at most (one protobuf): float32
# weights of more than this many parameters could be trained but never exported.
MAX_PARAMETERS = 400_000_000

# (lowest, highest) for the whole-number and real settings; a value outside is one line at the edge
# (`train --seed -1`, or a run folder's config.json), before TensorFlow starts.
_RANGES: dict[str, tuple[float, float]] = {
    "vocab_size": (3, 10_000_000), "embedding_dim": (1, 1_000_000), "units": (1, 1_000_000),
    "seq_len": (1, 100_000), "batch_size": (1, 1_000_000), "epochs": (1, 1_000_000),
    "seed": (0, 2**32 - 1), "val_split": (0.0, 0.9), "dropout": (0.0, 0.95), "learning_rate": (1e-12, 10.0),
    "word_dropout": (0.0, 0.95), "sampled_softmax": (0, 10_000_000),
    "sample_every": (0, 1_000_000), "sample_tokens": (1, 100_000),
}
_CHOICES = {"lr_schedule": ("constant", "cosine"), "strategy": ("default", "mirrored", "multi-worker"),
            "lowercase": ("auto", "ascii", "unicode")}


@dataclass
class TrainConfig:
    data: str = "builtin"  # corpus spec: builtin, builtin:ru, epicurious:PATH, text:PATH, jsonl:PATH
    vocab_size: int = 10000  # TextVectorization max_tokens (includes '' and [UNK])
    embedding_dim: int = 100  # Embedding output size
    units: int = 128  # LSTM units
    seq_len: int = 200  # tokens the model sees per recipe (the vectorizer keeps seq_len + 1)
    batch_size: int = 32  # recipes per step
    epochs: int = 25  # total epochs (a resumed run continues up to this number)
    seed: int = 42  # seeds the validation split, shuffling and weight initialisation
    val_split: float = 0.1  # fraction of recipes held out for validation (fixed by seed)
    mask: bool = True  # loss ignores positions after the first stop token (False: the lecture's behaviour)
    bucketing: bool = True  # batch recipes of similar length and trim padding (False: fixed seq_len batches)
    dropout: float = 0.0  # dropout after the embedding and after the LSTM (0 = none, as in the lecture)
    word_dropout: float = 0.0  # body input words read as [UNK] with this probability (training only)
    tie_embeddings: bool = False  # output layer = the embedding table (+ a projection when units differ)
    sampled_softmax: int = 0  # train on a sampled softmax over this many words (0 = the full softmax)
    learning_rate: float = 1e-3  # Adam learning rate (the peak one with a schedule)
    lr_schedule: str = "constant"  # constant | cosine (per epoch, from learning_rate down to 5% of it)
    mixed_precision: bool = False  # bfloat16 compute on CPU, float16 on GPU; logits stay float32
    jit_compile: bool = False  # XLA-compile the train step
    strategy: str = "default"  # default | mirrored (local devices) | multi-worker (TF_CONFIG)
    clean: bool = True  # drop recipes mostly in another script than the corpus's (train/corpus_check.py)
    lowercase: str = "auto"  # ascii (tf.strings.lower) | unicode (Python str.lower first) | auto
    sample_every: int = 1  # print a sample every N epochs (0 = never)
    sample_tokens: int = 60  # length of the per-epoch sample

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def validate(self, flags: bool = False) -> TrainConfig:
        """Raise UserError (one line naming the setting: its key, or its `--flag` when `flags`) for a value
        of the wrong type or out of range."""
        for f in fields(self):
            value = getattr(self, f.name)
            name = f"--{f.name.replace('_', '-')}" if flags else f.name
            default = getattr(_DEFAULTS, f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            else:
                ok = isinstance(value, str)
            if not ok:
                kind = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[type(default)]
                raise UserError(f"{name} must be {kind}, not {value!r}")
            low, high = _RANGES.get(f.name, (-math.inf, math.inf))
            if f.name in _RANGES and not low <= value <= high:
                raise UserError(f"{name} must be between {_num(low)} and {_num(high)}, not {value!r}")
            if f.name in _CHOICES and value not in _CHOICES[f.name]:
                raise UserError(f"{name} must be one of {', '.join(_CHOICES[f.name])}, not {value!r}")
        params = self.parameters(self.vocab_size)
        if params > MAX_PARAMETERS:
            raise UserError(f"the model would have {params:,} parameters ({params * 4 / 1e9:,.1f} GB of float32 "
                            f"weights), over the {MAX_PARAMETERS:,} an ONNX file can hold (2 GB): use a smaller "
                            "--vocab-size, --embedding-dim or --units")
        return self

    def parameters(self, vocab: int) -> int:
        """Trainable parameters: embedding, one LSTM layer, the output layer."""
        e, u = self.embedding_dim, self.units
        return vocab * e + 4 * u * (e + u + 1) + u * vocab + vocab

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from plain data (a run's config.json), checked; unknown keys are ignored."""
        if not isinstance(data, dict):
            raise UserError("the training config must be a JSON object")
        known = {f.name for f in fields(cls)}
        given: dict[str, Any] = {"clean": False} | data  # runs from before the corpus check did not clean theirs
        return cls(**{k: v for k, v in given.items() if k in known}).validate()

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """A run's config.json, through the one bounded reader; a bad value is one line naming the file."""
        try:
            return cls.from_dict(reading.read_json(path, reading.RUN_FILE))
        except UserError as exc:
            message = str(exc)
            raise UserError(message if str(path) in message else f"{path}: {message}") from None

    def model_config(self, vocab_len: int) -> dict[str, Any]:
        """The architecture facts the export and the runtime need."""
        return {
            "vocab_size": vocab_len,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "layers": 1,
            "seq_len": self.seq_len,
            "dropout": self.dropout,
        }


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


_DEFAULTS = TrainConfig()
