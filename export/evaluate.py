"""`recipe-repl eval`: held-out perplexity and top-1/top-5 accuracy of an ONNX model (onnxruntime,
batched) and of a Kneser–Ney 3-gram fitted on the training split — the same seeded split as training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from recipe_repl.export import figures
from recipe_repl.export.kneser_ney import KneserNey3

from recipe_repl.base.errors import ModelError, UserError
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.model.finite import not_finite
from recipe_repl.model.vocab import Vocabulary

TITLES = 100  # held-out titles per corpus sampled for "title words in samples" and "loops"


def target_sequence(vocab: Vocabulary, text: str, seq_len: int) -> list[int]:
    """What training saw: the first seq_len + 1 ids, then the stop token if the text was not cut."""
    ids = vocab.encode(text)[: seq_len + 1]
    return ids + [0] if len(ids) <= seq_len else ids


def _number(table: dict[str, Any], key: str, default: float, kind: type, path: Path) -> Any:
    """A number from the model's metadata, or a ModelError naming the key."""
    value = table.get(key, default)
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise ModelError(f"model {path}: metadata {key!r} is not a number ({value!r})") from None


def score_onnx(engine: OnnxEngine, sequences: list[list[int]], batch_size: int = 32) -> dict[str, Any]:
    """NLL/perplexity/top-1/top-5 over targets seq[1:] given inputs seq[:-1], batched from a fresh state.

    Goes through the runtime's engine, so a stateless model (tokens → probabilities) is scored the same
    way as a stateful one, and the model was checked against the contract when it was opened.
    """
    if batch_size < 1:
        raise UserError("batch size must be at least 1")
    nll = 0.0
    n = top1 = top5 = 0
    for b in range(0, len(sequences), batch_size):
        chunk = [s for s in sequences[b : b + batch_size] if len(s) >= 2]
        if not chunk:
            continue
        T = max(len(s) - 1 for s in chunk)
        x = np.zeros((len(chunk), T), np.int64)
        y = np.zeros((len(chunk), T), np.int64)
        real = np.zeros((len(chunk), T), bool)
        for r, s in enumerate(chunk):
            x[r, : len(s) - 1], y[r, : len(s) - 1], real[r, : len(s) - 1] = s[:-1], s[1:], True
        logits, _ = engine.forward(x, engine.start(len(chunk)))
        logp = np.asarray(logits, np.float64)  # log-probabilities for a "probs" model: normalizing again is a no-op
        with np.errstate(invalid="ignore", over="ignore"):
            logp -= logp.max(-1, keepdims=True)
            lse = np.log(np.exp(logp).sum(-1, keepdims=True))
        _check_finite(engine, lse[..., 0], real, chunk, b)
        logp -= lse
        tgt = np.take_along_axis(logp, y[..., None], -1)[..., 0]
        nll -= float(tgt[real].sum())
        top1 += int((logp.argmax(-1) == y)[real].sum())
        best5 = np.argpartition(-logp, min(5, logp.shape[-1] - 1), axis=-1)[..., :5]
        top5 += int((best5 == y[..., None]).any(-1)[real].sum())
        n += int(real.sum())
    mean = nll / max(n, 1)
    return {"tokens": n, "nll": mean, "perplexity": float(np.exp(mean)), "top1": top1 / max(n, 1),
            "top5": top5 / max(n, 1)}


def _check_finite(engine: OnnxEngine, lse: np.ndarray, real: np.ndarray, chunk: list[list[int]], first: int) -> None:
    """NonFiniteLogits naming the held-out recipe and word where the logits stop being numbers (from the
    log-sum-exp every position needs anyway; NaN or ±inf anywhere in a row makes it NaN)."""
    bad = ~np.isfinite(lse) & real
    if bad.any():
        row, t = (int(i[0]) for i in np.nonzero(bad))
        words = engine.vocab.decode_tokens(chunk[row])
        raise not_finite(f"in held-out recipe {first + row + 1} (“{' '.join(words[:6])} …”)", words, t)


# Corpora eval may read without being told: bundled with the tool (or, for epicurious, the copy
# `recipe-repl data epicurious` stored). A model file never chooses a path to read.
NAMED_CORPORA = ("builtin", "builtin:en", "builtin:ru", "wikibooks", "epicurious")


def corpus_to_evaluate(data: str | None, recorded: Any, model: Path) -> str:
    """The corpus spec eval reads: the one the user named, else the model's recorded one only when it is
    made of built-in names; a path the model records is only ever suggested."""
    if data:
        return data
    if isinstance(recorded, str) and recorded.strip():
        parts = [p.strip() for p in recorded.split("+")]
        if all(p in NAMED_CORPORA for p in parts):
            return "+".join(parts)
        raise UserError(f"{model} was trained on {recorded[:200]}: pass --data to evaluate on it (eval reads "
                        f"only corpora you name, or the built-in ones: {', '.join(NAMED_CORPORA)})")
    raise UserError("the model does not say which corpus it was trained on: pass --data")


def evaluate(model: Path, data: str | None = None, batch_size: int = 32, limit: int | None = None,
             ngram: bool = True, vocab_path: Path | None = None, titles: int = TITLES,
             figure_seed: int = 0) -> dict[str, Any]:
    """Held-out perplexity (LSTM and 3-gram, per corpus) and, unless `titles` is 0, the title figures:
    title use per corpus (LSTM and 3-gram) and title words and loops in samples from `titles`
    held-out titles per corpus, seeded with `figure_seed`.

    `data` is a corpus spec; without one, the model's recorded corpus when it is a built-in one
    (`corpus_to_evaluate`): a model file never chooses a path to read."""
    from recipe_repl.train.preprocess import load_split

    if batch_size < 1:
        raise UserError("batch size must be at least 1")
    if limit is not None and limit < 1:
        raise UserError("limit must be at least 1 held-out recipe")
    model = Path(model)
    engine = OnnxEngine(model, provider="cpu", vocab_path=vocab_path)  # the runtime's contract check
    vocab = engine.vocab
    config, training = engine.info.config, engine.info.training
    spec = corpus_to_evaluate(data, training.get("data"), model)
    seq_len = _number(config, "seq_len", 200, int, model)
    seed, val_split = _number(training, "seed", 42, int, model), _number(training, "val_split", 0.1, float, model)
    clean = bool(training.get("clean", False))  # the corpus as training read it (foreign recipes dropped)
    corpus, split = load_split(spec, val_split, seed, clean)
    per_val = {name: val[:limit] if limit else val for name, (_, val) in split.per_corpus.items()}
    val_texts = [t for val in per_val.values() for t in val]
    if not val_texts:
        raise UserError("no held-out recipes to evaluate on (validation split is empty)")
    val_seqs = [target_sequence(vocab, t, seq_len) for t in val_texts]
    report = {"model": str(model), "data": corpus.name, "held_out_recipes": len(val_texts),
              "train_recipes": len(split.train), "seed": seed, "val_split": val_split,
              "lstm": score_onnx(engine, val_seqs, batch_size)}
    kn = KneserNey3(len(vocab)).fit(target_sequence(vocab, t, seq_len) for t in split.train) if ngram else None
    if kn is not None:
        report["kneser_ney_3gram"] = kn.score(val_seqs) | {"discounts": [kn.D1, kn.D2, kn.D3]}
        report["perplexity_ratio"] = report["lstm"]["perplexity"] / report["kneser_ney_3gram"]["perplexity"]
    if titles:
        report["title_figures"] = title_figures(engine, per_val, seq_len, titles, figure_seed, kn)
    if len(per_val) > 1:  # each corpus on its own, the 3-gram still fitted on the whole training split
        report["per_corpus"] = {}
        for name, val in per_val.items():
            seqs = [target_sequence(vocab, t, seq_len) for t in val]
            part: dict[str, Any] = {"held_out_recipes": len(val), "lstm": score_onnx(engine, seqs, batch_size)}
            if kn is not None:
                part["kneser_ney_3gram"] = kn.score(seqs)
                part["perplexity_ratio"] = part["lstm"]["perplexity"] / part["kneser_ney_3gram"]["perplexity"]
            report["per_corpus"][name] = part
    return report


def title_figures(engine: OnnxEngine, per_val: dict[str, list[str]], seq_len: int, titles: int, seed: int,
                  kn: KneserNey3 | None) -> dict[str, Any]:
    """Title use per corpus (the 3-gram's beside it), and title words and loops in samples from `titles`
    held-out titles of each corpus, per corpus and all together."""
    use: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    for name, val in per_val.items():
        use[name] = {"lstm": figures.as_dict(figures.title_use(engine, val, seq_len, seed)),
                     "lstm_title_words": figures.as_dict(figures.title_word_use(engine, val, seq_len, seed))}
        if kn is not None:
            use[name]["kneser_ney_3gram"] = figures.as_dict(
                figures.ngram_title_use(kn.token_nlls, engine.vocab, val, seq_len, seed))
        samples[name] = figures.sample_figures(engine, figures.pick_titles(val, titles, seed), seed)
    return {"seed": seed, "titles_per_corpus": titles, "max_tokens": figures.SAMPLE_TOKENS, "title_use": use,
            "samples": {name: figures.as_dict(r) for name, r in samples.items()},
            "samples_all": figures.as_dict(figures.pool(list(samples.values())))}


def format_figures(fig: dict[str, Any]) -> list[str]:
    """The title figures as report lines."""
    lines = [f"title use: held-out bodies' perplexity after another recipe's title / after their own "
             f"(derangement seed {fig['seed']})"]
    for name, u in fig["title_use"].items():
        line = f"  {name}: LSTM {u['lstm']['ratio']:.3f}x"
        if "kneser_ney_3gram" in u:
            line += f", 3-gram {u['kneser_ney_3gram']['ratio']:.3f}x"
        lines.append(line + f" ({u['lstm']['recipes']} recipes, {u['lstm']['body_tokens']} body tokens); "
                     f"on the body's words that name the title {u['lstm_title_words']['ratio']:.3f}x "
                     f"({u['lstm_title_words']['body_tokens']} tokens)")
    every = fig["samples_all"]
    lines.append(f"samples from {every['titles']} held-out titles (\"recipe for TITLE |\", {fig['max_tokens']} "
                 f"tokens, seed {fig['seed']}): title words = the body names a content word of the title; "
                 "loops = a 4-gram three times or more")
    groups = [("all", every)] + (list(fig["samples"].items()) if len(fig["samples"]) > 1 else [])
    for name, rep in groups:
        temps = rep["per_temperature"]
        words = ", ".join(f"T={t['temperature']:g} {t['title_share']:.0%}" for t in temps)
        loops = ", ".join(f"T={t['temperature']:g} {t['loop_share']:.0%}" for t in temps)
        lines.append(f"  {name}: title words {words} (held-out recipes {rep['data_title_share']:.0%}); "
                     f"loops {loops} (held-out recipes {rep['data_loop_share']:.0%})")
    return lines


def format_report(report: dict[str, Any]) -> str:
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
    if "title_figures" in report:
        lines += format_figures(report["title_figures"])
    return "\n".join(lines)
