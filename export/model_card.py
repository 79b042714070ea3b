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
from recipe_repl.export.card_render import SAMPLE_PROMPT, SAMPLE_TOKENS, render_card
from recipe_repl.export.evaluate import evaluate
from recipe_repl.export.ship_epochs import manifest_facts
from recipe_repl.models import lecture
from recipe_repl.train.rundir import RunDir

from recipe_repl.base import atomic
from recipe_repl.model import contract
from recipe_repl.model.vocab import Vocabulary


def card_samples(model_path: Path, temperature: float, seeds: Sequence[int]) -> list[tuple[int, str, str]]:
    """(seed, stop reason, text) per seed: exactly what `recipe-repl generate "recipe for" --seed N
    --temperature T --max-tokens 80 --model MODEL` prints (the same code makes them)."""
    from recipe_repl.base.settings import Settings
    from recipe_repl.model.engine import OnnxEngine
    from recipe_repl.session.samples import generate_samples

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


LECTURE_PROMPTS = lecture.PROMPTS
TABLE_ROWS = 8


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
    data = run.config().data  # the corpus of the run named on the command line (eval never follows a model's)
    report = evaluate(model_path, data=data)

    from recipe_repl.export.quantize import quantize_int8

    held = [s[:-1] for s in _held_out(vocab, config, training)]
    quantized: dict[str, bytes] = {scope: quantize_int8(model_bytes, scope) for scope in ("int8", "int8-output")}
    q_facts: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scope, q_bytes in quantized.items():
            q_path = Path(tmp) / f"{scope}.onnx"
            q_path.write_bytes(q_bytes)
            q_facts[scope] = {"eval": evaluate(q_path, data=data, ngram=False, titles=0)["lstm"],
                              "agreement": parity.top1_agreement(model_bytes, q_bytes, held)}
    prompt = vocab.encode(SAMPLE_PROMPT)
    speed = {
        "float32 stateful": ms_per_token(sess, prompt),
        "float32 re-feeding the prefix": ms_per_token(sess, prompt, n=200, stateful=False),
        "int8 stateful": ms_per_token(parity.session(quantized["int8"]), prompt),
        "int8 output layer only, stateful": ms_per_token(parity.session(quantized["int8-output"]), prompt),
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
        "int8": q_facts["int8"],
        "int8_output": q_facts["int8-output"],
        "parity": json.loads(meta[contract.META_PARITY]),
        "speed_ms": speed,
        "samples": {str(t): card_samples(model_path, t, (1, 2, 3)) for t in (1.0, 0.2)},
        "style_samples": style_samples(model_path, training),
        "tables": {p: next_word_tables(model_path, p) for p in LECTURE_PROMPTS},
        "epochs": manifest_facts(model_path.parent / "epochs"),
        "foreign_vocabulary": foreign_vocabulary(vocab),
        "lecture": lecture_facts(),
    }


def lecture_facts() -> dict[str, Any]:
    """The lecture's published tables (package data) and their source, for the card."""
    tables: dict[str, dict[str, Any]] = {p: {} for p in lecture.PROMPTS}
    for t in lecture.TABLES:
        tables[t.prompt][f"{t.temperature:g}"] = {"rows": [list(r) for r in t.rows], "derived": t.derived,
                                                  "max_error": t.max_error}
    return {"source": lecture.SOURCE, "tables": tables}


def foreign_vocabulary(vocab: Vocabulary) -> list[str]:
    """The vocabulary's words in another script than most of its words (Cyrillic in an English model)."""
    from recipe_repl.train.corpus_check import script_of

    scripts = {w: script_of(w) for w in vocab.words}
    counts: dict[str, int] = {}
    for s in scripts.values():
        if s:
            counts[s] = counts.get(s, 0) + 1
    main = max(counts, key=lambda k: counts[k]) if counts else None
    return [w for w, s in scripts.items() if s and s != main]


def next_word_tables(model_path: Path, prompt: str, temperatures: Sequence[float] = (1.0, 0.2),
                     n: int = TABLE_ROWS) -> dict[str, list[tuple[str, float]]]:
    """The `n` likeliest next words after `prompt` per temperature: what `:compare 1.0 0.2` shows."""
    from recipe_repl.base.settings import Settings
    from recipe_repl.generate.inspection import next_logits, sampling_distribution
    from recipe_repl.model.engine import OnnxEngine
    from recipe_repl.plugin.manager import Plugins
    from recipe_repl.views.render import top_ids

    engine = OnnxEngine(model_path, provider="cpu")
    ids = engine.vocab.encode(prompt)
    logits = next_logits(engine, ids)
    specs = Plugins(load_third_party=False).processor_specs()
    out = {}
    for t in temperatures:
        probs = sampling_distribution(logits, ids, Settings(temperature=t), specs, engine.vocab)
        out[f"{t:g}"] = [(engine.vocab.words[i] or "⏹ [end]", float(probs[i])) for i in top_ids(probs, n)]
    return out


def style_samples(model_path: Path, training: dict[str, Any]) -> list[dict[str, Any]]:
    """For each corpus, the title of its first held-out recipe as a prompt, sampled at T = 1.0 and 0.2."""
    from recipe_repl.train.preprocess import load_split

    from recipe_repl.base.settings import Settings
    from recipe_repl.model.engine import OnnxEngine
    from recipe_repl.session.samples import generate_samples

    engine = OnnxEngine(model_path, provider="cpu")
    _, split = load_split(training["data"], training["val_split"], training["seed"], bool(training.get("clean")))
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


def build_card(model_path: Path, run_dir: Path, make_seconds: float | None = None) -> str:
    """Measure and render the card."""
    return render_card(card_facts(model_path, run_dir, make_seconds))


def _held_out(vocab: Vocabulary, config: dict[str, Any], training: dict[str, Any]) -> list[list[int]]:
    from recipe_repl.export.evaluate import target_sequence
    from recipe_repl.train.preprocess import load_split

    _, split = load_split(training["data"], training["val_split"], training["seed"], bool(training.get("clean")))
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
