"""`recipe-repl eval`: held-out perplexity and top-1/top-5 accuracy of an ONNX model (onnxruntime,
batched) and of a Kneser–Ney 3-gram fitted on the training split — the same seeded split as training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from recipe_repl.export.kneser_ney import KneserNey3

from recipe_repl import contract
from recipe_repl.errors import ModelError, UserError
from recipe_repl.vocab import Vocabulary


def target_sequence(vocab: Vocabulary, text: str, seq_len: int) -> list[int]:
    """What training saw: the first seq_len + 1 ids, then the stop token if the text was not cut."""
    ids = vocab.encode(text)[: seq_len + 1]
    return ids + [0] if len(ids) <= seq_len else ids


def _session(path: Path):
    import onnxruntime as ort

    if not path.exists():
        raise UserError(f"model file not found: {path}")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for unreadable files
        raise ModelError(f"{path} is not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from None


def _meta(sess, path: Path) -> dict[str, str]:
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    if contract.META_VOCAB not in meta:
        raise ModelError(f"{path} has no recipe_repl vocabulary metadata (not exported by recipe-repl)")
    return meta


def score_onnx(sess, kind: str, sequences: list[list[int]], batch_size: int = 32) -> dict:
    """NLL/perplexity/top-1/top-5 over targets seq[1:] given inputs seq[:-1], batched with zero state."""
    inputs = {i.name: i for i in sess.get_inputs()}
    nll = 0.0
    n = top1 = top5 = 0
    for b in range(0, len(sequences), batch_size):
        chunk = [s for s in sequences[b : b + batch_size] if len(s) >= 2]
        if not chunk:
            continue
        T = max(len(s) - 1 for s in chunk)
        x = np.zeros((len(chunk), T), np.int32)
        y = np.zeros((len(chunk), T), np.int64)
        real = np.zeros((len(chunk), T), bool)
        for r, s in enumerate(chunk):
            x[r, : len(s) - 1], y[r, : len(s) - 1], real[r, : len(s) - 1] = s[:-1], s[1:], True
        feeds = {contract.TOKENS_INPUT: x}
        for name, inp in inputs.items():
            if name != contract.TOKENS_INPUT:
                feeds[name] = np.zeros((len(chunk), inp.shape[1]), np.float32)
        out = np.asarray(sess.run(None, feeds)[0], np.float64)
        if kind == "probs":
            logp = np.log(np.maximum(out, 1e-300))
        else:
            logp = out - out.max(-1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        tgt = np.take_along_axis(logp, y[..., None], -1)[..., 0]
        nll -= float(tgt[real].sum())
        top1 += int((logp.argmax(-1) == y)[real].sum())
        best5 = np.argpartition(-logp, min(5, logp.shape[-1] - 1), axis=-1)[..., :5]
        top5 += int((best5 == y[..., None]).any(-1)[real].sum())
        n += int(real.sum())
    mean = nll / max(n, 1)
    return {"tokens": n, "nll": mean, "perplexity": float(np.exp(mean)), "top1": top1 / max(n, 1),
            "top5": top5 / max(n, 1)}


def evaluate(model: Path, data: str | None = None, batch_size: int = 32, limit: int | None = None,
             ngram: bool = True) -> dict:
    from recipe_repl.train.preprocess import load_split

    model = Path(model)
    sess = _session(model)
    meta = _meta(sess, model)
    vocab = Vocabulary.from_list(json.loads(meta[contract.META_VOCAB]), meta.get(contract.META_LOWERCASE, "ascii"))
    config = json.loads(meta.get(contract.META_CONFIG, "{}"))
    training = json.loads(meta.get(contract.META_TRAINING, "{}"))
    kind = meta.get(contract.META_OUTPUT_KIND, "logits")
    spec = data or training.get("data")
    if not spec:
        raise UserError("the model does not say which corpus it was trained on: pass --data")
    seq_len = int(config.get("seq_len", 200))
    seed, val_split = int(training.get("seed", 42)), float(training.get("val_split", 0.1))
    corpus, split = load_split(spec, val_split, seed)
    per_val = {name: val[:limit] if limit else val for name, (_, val) in split.per_corpus.items()}
    val_texts = [t for val in per_val.values() for t in val]
    if not val_texts:
        raise UserError("no held-out recipes to evaluate on (validation split is empty)")
    val_seqs = [target_sequence(vocab, t, seq_len) for t in val_texts]
    report = {"model": str(model), "data": corpus.name, "held_out_recipes": len(val_texts),
              "train_recipes": len(split.train), "seed": seed, "val_split": val_split,
              "lstm": score_onnx(sess, kind, val_seqs, batch_size)}
    kn = KneserNey3(len(vocab)).fit(target_sequence(vocab, t, seq_len) for t in split.train) if ngram else None
    if kn is not None:
        report["kneser_ney_3gram"] = kn.score(val_seqs) | {"discounts": [kn.D1, kn.D2, kn.D3]}
        report["perplexity_ratio"] = report["lstm"]["perplexity"] / report["kneser_ney_3gram"]["perplexity"]
    if len(per_val) > 1:  # each corpus on its own, the 3-gram still fitted on the whole training split
        report["per_corpus"] = {}
        for name, val in per_val.items():
            seqs = [target_sequence(vocab, t, seq_len) for t in val]
            part: dict = {"held_out_recipes": len(val), "lstm": score_onnx(sess, kind, seqs, batch_size)}
            if kn is not None:
                part["kneser_ney_3gram"] = kn.score(seqs)
                part["perplexity_ratio"] = part["lstm"]["perplexity"] / part["kneser_ney_3gram"]["perplexity"]
            report["per_corpus"][name] = part
    return report


def format_report(report: dict) -> str:
    lines = [f"{report['model']}: {report['held_out_recipes']} held-out recipes of {report['data']} "
             f"(seed {report['seed']}, val split {report['val_split']})",
             f"{'model':<22}{'tokens':>8}{'perplexity':>12}{'top-1':>8}{'top-5':>8}"]
    for name, key in (("LSTM (ONNX)", "lstm"), ("Kneser-Ney 3-gram", "kneser_ney_3gram")):
        if key in report:
            r = report[key]
            lines.append(f"{name:<22}{r['tokens']:>8}{r['perplexity']:>12.2f}{r['top1']:>8.1%}{r['top5']:>8.1%}")
    if "perplexity_ratio" in report:
        lines.append(f"perplexity ratio LSTM / 3-gram: {report['perplexity_ratio']:.3f}")
    for name, part in report.get("per_corpus", {}).items():
        line = f"  {name}: {part['held_out_recipes']} recipes, LSTM perplexity {part['lstm']['perplexity']:.2f}"
        if "perplexity_ratio" in part:
            line += (f", 3-gram {part['kneser_ney_3gram']['perplexity']:.2f}, "
                     f"ratio {part['perplexity_ratio']:.3f}")
        lines.append(line)
    return "\n".join(lines)
