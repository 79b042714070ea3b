"""`export_run`: run folder → parity-checked, self-describing .onnx file, written atomically."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from recipe_repl.export import convert, metadata, parity

from recipe_repl.base import atomic
from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean
from recipe_repl.model.vocab import Vocabulary

HELD_OUT_RECIPES = 48
SAMPLE_TEXTS = 64  # validation recipes bundled into the model file for `:cells find` (about 40 KB)
SAMPLE_CHARS = 1500
PROMPT = "recipe for"


@dataclass
class ExportResult:
    path: Path
    parity: dict[str, Any]
    quantized: dict[str, Any] = field(default_factory=dict)  # top-1 agreement etc. when --quantize
    bytes: int = 0
    held: HeldOut | None = None  # the validation recipes used (a per-epoch export reuses them)


@dataclass
class HeldOut:
    """Validation recipes for the parity check (as ids) and for the model file (`sample_texts`, bundled
    for `:cells find`: the runtime cannot read the corpus itself)."""

    ids: list[list[int]]
    source: str
    texts: list[str]  # empty when the corpus could not be read (a fixed fallback text is no sample of it)
    ngram: str | None = None  # the training split's 3-gram counts for `:vs-ngram` (None: not stored)
    ngram_note: str = ""  # one line saying what was stored, or why not


def held_out(loaded: convert.LoadedRun, vocab: Vocabulary, limit: int = HELD_OUT_RECIPES) -> HeldOut:
    """Validation recipes (the training split, same seed), cut to seq_len, and where they come from."""
    from recipe_repl.export.ngram_counts import counts_value
    from recipe_repl.train.preprocess import load_split

    cfg = loaded.config
    ngram, ngram_note = None, "3-gram counts: not stored (the corpus could not be read)"
    try:
        corpus, split = load_split(cfg.data, cfg.val_split, cfg.seed, cfg.clean)
        val = split.val
        source = f"validation split of {corpus.name}"
        ngram, ngram_note = counts_value(vocab, split.train, cfg.seq_len, f"training split of {corpus.name}")
    except UserError:
        val, source = [], ""
    # spread over the whole split, so that every corpus of a joined spec (builtin+wikibooks) is in it
    step = max(1, len(val) / SAMPLE_TEXTS)
    texts = [_cut(val[int(k * step)], cfg.seq_len) for k in range(min(SAMPLE_TEXTS, len(val)))]
    if not val:  # the corpus moved away: fall back to a fixed text, still parity-meaningful
        val = ["Recipe for tomato soup | Heat the oil in a pot, add onion and cook 5 minutes. Serve hot."]
        source = "fixed fallback text"
    seqs = [ids[: cfg.seq_len] for ids in (vocab.encode(t) for t in val[:limit]) if ids]
    return HeldOut(seqs, source, texts, ngram, ngram_note)


def held_out_ids(loaded: convert.LoadedRun, vocab: Vocabulary, limit: int = HELD_OUT_RECIPES) -> tuple[list[list[int]], str]:
    """Token ids of validation recipes (the training split, same seed), cut to seq_len; and their source."""
    found = held_out(loaded, vocab, limit)
    return found.ids, found.source


def _cut(text: str, words: int) -> str:
    """The first `words` whitespace-separated pieces of a text, and no more than SAMPLE_CHARS characters."""
    pieces = text.split()
    cut = " ".join(pieces[:words])
    return cut[:SAMPLE_CHARS].rsplit(" ", 1)[0] if len(cut) > SAMPLE_CHARS else cut


def training_facts(loaded: convert.LoadedRun, epoch: int | None = None) -> dict[str, Any]:
    """Training JSON for the metadata: training.json, or (for an interrupted run, or a kept `epoch`) the
    log and corpus files."""
    run = loaded.run
    facts = run.json(run.training_file) if epoch is None else {}
    if not facts:
        rows, corpus = run.log_rows(), run.json(run.corpus_file)
        if epoch is not None:
            rows = [r for r in rows if r.get("epoch") == epoch] or [{"epoch": epoch}]
        last = rows[-1] if rows else {}
        facts = {
            "corpus": corpus.get("name"), "corpus_recipes": corpus.get("used"),
            "train_recipes": corpus.get("train_recipes"), "val_recipes": corpus.get("val_recipes"),
            "epochs": last.get("epoch", 0), "final_loss": last.get("loss"), "final_val_loss": last.get("val_loss"),
            "final_val_perplexity": last.get("val_perplexity"), "seed": loaded.config.seed,
            "val_split": loaded.config.val_split, "data": loaded.config.data, "masked_loss": loaded.config.mask,
            "date": None,
        }
    facts.setdefault("clean", loaded.config.clean)  # eval and the card rebuild the split from these facts
    from recipe_repl.train import checkpoint

    facts["checkpoint_epoch"] = checkpoint.epoch_of(loaded.weights or run.checkpoint_file)
    facts["exported"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return facts


def export_run(run_dir: Path, out: Path, quantize: str | None = None, stateless: bool = False,
               tolerance: float = parity.TOLERANCE, stream: IO[str] | None = None, quiet: bool = False,
               _mutate: Callable[[Any], None] | None = None, epoch: int | None = None, held: HeldOut | None = None,
               greedy_tokens: int = parity.GREEDY_TOKENS) -> ExportResult:
    """Convert, check parity, add metadata and write `out` atomically; on any failure no file is left.

    `epoch` exports the checkpoint `train --keep-epochs` kept after that epoch instead of the last one;
    `held` reuses validation recipes already read (the per-epoch exports read the corpus once).
    `_mutate(onnx_model)` lets tests damage the graph before the parity check.
    """
    stream = stream or sys.stderr
    out = Path(out)
    if quantize not in (None, "int8", "int8-output"):
        raise UserError(f"unknown quantization {quantize!r}; only 'int8' and 'int8-output' are supported")
    if stateless and quantize:
        raise UserError("--stateless and --quantize cannot be combined")
    if out.exists() and out.is_dir():
        raise UserError(f"--out must be a file path, {out} is a folder")
    try:  # now, not after the conversion and the parity check
        atomic.check_writable(out, parents=True)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {_why(exc, out)}") from None
    loaded = convert.load_run(Path(run_dir), epoch)
    vocab = Vocabulary.from_list(loaded.words, lowercase=loaded.lowercase)
    cfg = loaded.config
    held = held or held_out(loaded, vocab)
    held_ids, source = held.ids, held.source
    prompt = vocab.encode(PROMPT)

    def say(text: str) -> None:
        if not quiet:
            print(clean(text, keep="\n"), file=stream, flush=True)

    import onnx

    if stateless:
        model = convert.to_onnx_stateless(loaded.model)
        if _mutate:
            _mutate(model)
        report = _stateless_parity(loaded.model, model.SerializeToString(), held_ids, tolerance)
        kind = "probs"
    else:
        from recipe_repl.export.quantize import simplify

        step = convert.build_step_model(loaded.model, len(loaded.words), cfg.embedding_dim, cfg.units)
        # tf2onnx's index arithmetic and Tensordot reshapes removed: ~1.2x faster steps (checked here
        # against the converted graph, and below by the parity check like any export)
        model = onnx.load_from_string(simplify(convert.to_onnx(step, cfg.units).SerializeToString()))
        if _mutate:
            _mutate(model)
        checked = parity.check(loaded.model, model.SerializeToString(), held_ids, prompt,
                               greedy_tokens=greedy_tokens, tolerance=tolerance)
        say(checked.summary())
        if not checked.ok:
            raise UserError(f"parity check failed, nothing written: {checked.summary()}")
        report = checked.to_dict()
        kind = "logits"
    report["held_out_source"] = source
    quant_report: dict[str, Any] = {}
    if quantize:
        from recipe_repl.export.quantize import quantize_int8

        float_bytes = model.SerializeToString()
        q_bytes = quantize_int8(float_bytes, quantize)
        what = "int8 dynamic" if quantize == "int8" else "int8 dynamic, output layer only"
        quant_report = parity.top1_agreement(float_bytes, q_bytes, held_ids) | {"quantization": what}
        say(f"{quantize}: top-1 agreement with float {quant_report['top1_agreement']:.2%} on "
            f"{quant_report['positions']} held-out positions, max|Δlogits| {quant_report['max_abs_logit_diff']:.3f}")
        model = onnx.load_from_string(q_bytes)
        report["quantized"] = quant_report
    samples = {"source": source, "texts": held.texts} if held.texts else None
    say(held.ngram_note)
    meta = metadata.build_metadata(loaded.words, loaded.lowercase, cfg.model_config(len(loaded.words)),
                                   training_facts(loaded, epoch), report, kind, sample_texts=samples,
                                   ngram=held.ngram)
    metadata.apply_metadata(model, meta)
    data = model.SerializeToString()
    try:
        atomic.write_bytes(out, data, parents=True)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {_why(exc, out)}") from None
    say(f"wrote {out} ({len(data) / 2**20:.1f} MiB, output_kind {kind})")
    return ExportResult(out, report, quant_report, len(data), held)


def _why(exc: OSError, out: Path) -> str:
    if isinstance(exc, FileExistsError | NotADirectoryError):  # mkdir met a regular file on the way
        return f"{out.parent} is not a folder"
    return exc.strerror or str(exc)


def _stateless_parity(keras_model: Any, model_bytes: bytes, held_out: list[list[int]], tolerance: float
                      ) -> dict[str, Any]:
    """Probabilities from ONNX vs softmax of the Keras logits on held-out recipes."""
    import numpy as np
    from recipe_repl.train.model import compiled_forward

    forward = compiled_forward(keras_model)
    sess = parity.session(model_bytes)
    max_diff = 0.0
    for i in range(0, len(held_out), 16):
        x = parity.pad_batch(held_out[i : i + 16])
        logits = forward(x).astype(np.float64)
        ref = np.exp(logits - logits.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
        got = sess.run(None, {"tokens": x})[0]
        max_diff = max(max_diff, float(np.abs(ref - got).max()))
    if max_diff > tolerance:
        raise UserError(f"parity check failed, nothing written: stateless max|Δprobs| {max_diff:.2e} > {tolerance:g}")
    return {"max_abs_prob_diff": max_diff, "held_out_recipes": len(held_out), "tolerance": tolerance, "ok": True}
