"""The 3-gram counts `export` stores in a model file for `:vs-ngram` (format: `recipe_repl.model.ngram`).

They are the counts `recipe-repl eval` fits its Kneser–Ney 3-gram on: the training split (same
corpus spec, seed and validation share as training), each recipe as `target_sequence` gives it.
`python -m recipe_repl.export.ngram_counts MODEL.onnx` adds them to a file exported before they
were stored (it reads the corpus named in the model's metadata; the `train` extra is needed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from recipe_repl.export.evaluate import target_sequence

from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean
from recipe_repl.model import contract, ngram
from recipe_repl.model.vocab import Vocabulary


def counts_value(vocab: Vocabulary, train_texts: Sequence[str], seq_len: int, source: str
                 ) -> tuple[str | None, str]:
    """The metadata value (None when over `ngram.BUDGET_BYTES`) and one line saying what was stored."""
    sequences = [target_sequence(vocab, t, seq_len) for t in train_texts]
    uvw, counts = ngram.count_trigrams(sequences, len(vocab))
    if not len(counts):
        return None, "3-gram counts: none (no training recipes)"
    value = ngram.encode(uvw, counts, len(vocab), source)
    size = len(value.encode("utf-8"))
    if size > ngram.BUDGET_BYTES:
        return None, (f"3-gram counts: {len(counts):,} trigrams take {size / 2**20:.1f} MiB, over the "
                      f"{ngram.BUDGET_BYTES // 2**20} MiB budget: not stored (:vs-ngram will say so)")
    return value, f"3-gram counts: {len(counts):,} trigrams of {source}, {size / 2**20:.2f} MiB"


def add_counts(model_path: Path, out: Path | None = None, data: str | None = None) -> str:
    """Write `model_path` (or `out`) with the 3-gram counts of its training split in its metadata."""
    import onnx
    from recipe_repl.export.metadata import apply_metadata
    from recipe_repl.train.preprocess import load_split

    from recipe_repl.base import atomic
    from recipe_repl.model.engine import OnnxEngine

    engine = OnnxEngine(model_path, provider="cpu")  # the runtime's contract check first
    training, config = engine.info.training, engine.info.config
    spec = data or training.get("data")
    if not isinstance(spec, str) or not spec:
        raise UserError("the model does not say which corpus it was trained on: pass --data")
    try:
        seed, val_split = int(training.get("seed", 42)), float(training.get("val_split", 0.1))
        seq_len = int(config.get("seq_len", 200))
    except (TypeError, ValueError):
        raise UserError(f"model {model_path}: its seed, val_split or seq_len metadata is not a number") from None
    corpus, split = load_split(spec, val_split, seed)
    value, line = counts_value(engine.vocab, split.train, seq_len, f"training split of {corpus.name}")
    if value is None:
        raise UserError(line)
    model = onnx.load(str(model_path), load_external_data=False)
    apply_metadata(model, {contract.META_NGRAM: value})
    atomic.write_bytes(Path(out or model_path), model.SerializeToString())
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m recipe_repl.export.ngram_counts MODEL [--out FILE] [--data SPEC]`."""
    parser = argparse.ArgumentParser(prog="python -m recipe_repl.export.ngram_counts",
                                     description="Store the 3-gram counts of a model's training split in it "
                                                 "(for :vs-ngram).")
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="write here instead of over MODEL")
    parser.add_argument("--data", default=None, help="corpus spec (default: the model's own)")
    args = parser.parse_args(argv)
    try:
        print(clean(add_counts(args.model, args.out, args.data)), file=sys.stderr)
    except UserError as exc:
        print(clean(f"error: {exc}"), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
