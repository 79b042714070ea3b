"""Training settings: one dataclass, a comment on each field (read from CLI flags, saved as run/config.json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        data = {"clean": False} | data  # runs from before the corpus check did not clean their corpus
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

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
