"""`recipe-repl eval`: ONNX perplexity/accuracy on the seeded held-out split, and the Kneser–Ney 3-gram."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from recipe_repl.export.commands import eval_command
from recipe_repl.export.kneser_ney import BOS, KneserNey3

from recipe_repl.base.errors import UserError
from tests.tiny import EPICURIOUS_SAMPLE

TINY_DATA = f"epicurious:{EPICURIOUS_SAMPLE}"  # the corpus tiny models are trained on

CORPUS = [[2, 3, 4, 5, 0], [2, 3, 6, 5, 0], [2, 7, 4, 5, 3, 0], [2, 3, 4, 8, 0]]


def test_kneser_ney_distributions_sum_to_one():
    kn = KneserNey3(vocab_size=12).fit(CORPUS)
    for u, v in [(2, 3), (3, 4), (BOS, 2), (9, 9), (11, 3), (BOS, BOS)]:  # seen, unseen and start contexts
        p = kn.distribution(u, v)
        assert p.shape == (12,)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (p > 0).all()  # unseen words keep some mass


def test_kneser_ney_prefers_what_it_saw():
    kn = KneserNey3(vocab_size=12).fit(CORPUS)
    p = kn.distribution(2, 3)
    assert int(np.argmax(p)) == 4  # "2 3 → 4" twice, "2 3 → 6" once
    assert p[4] > p[6] > p[10]
    # continuation counts: 5 follows many contexts, so it beats a word seen as often in one context
    assert kn.p1[5] >= kn.p1[8]


def test_kneser_ney_score_counts_targets_after_the_first():
    kn = KneserNey3(vocab_size=12).fit(CORPUS)
    r = kn.score([[2, 3, 4, 5, 0]])
    assert r["tokens"] == 4
    expected = -np.mean([math.log(kn.distribution(*ctx)[w]) for ctx, w in
                         [((BOS, 2), 3), ((2, 3), 4), ((3, 4), 5), ((4, 5), 0)]])
    assert r["nll"] == pytest.approx(expected)
    assert r["perplexity"] == pytest.approx(math.exp(expected))
    assert 0 <= r["top1"] <= r["top5"] <= 1


@pytest.mark.slow
def test_eval_reproduces_the_training_validation_perplexity(tiny_onnx: Path, tiny_run_dir: Path):
    from recipe_repl.export.evaluate import evaluate

    report = evaluate(tiny_onnx, data=TINY_DATA)  # eval reads the corpus it is given (a path: never the model's)
    assert report["held_out_recipes"] == 3 and report["train_recipes"] == 26  # the training split, same seed
    val_loss = json.loads((tiny_run_dir / "training.json").read_text())["final_val_loss"]
    assert report["lstm"]["nll"] == pytest.approx(val_loss, rel=1e-4)
    kn = report["kneser_ney_3gram"]
    assert kn["tokens"] == report["lstm"]["tokens"] > 0
    assert report["perplexity_ratio"] == pytest.approx(report["lstm"]["perplexity"] / kn["perplexity"])
    for r in (report["lstm"], kn):
        assert 0 <= r["top1"] <= r["top5"] <= 1


@pytest.mark.slow
def test_eval_reports_the_title_figures_seeded(tiny_onnx: Path):
    from recipe_repl.export import figures
    from recipe_repl.export.evaluate import evaluate, format_report

    report = evaluate(tiny_onnx, data=TINY_DATA, titles=2, figure_seed=5)
    fig = report["title_figures"]
    [(name, use)] = fig["title_use"].items()
    assert use["lstm"]["recipes"] == report["held_out_recipes"] == 3
    assert use["lstm"]["ratio"] > 0 and use["kneser_ney_3gram"]["ratio"] > 0
    assert fig["samples_all"]["titles"] == 2 and [t["temperature"] for t in fig["samples_all"]["per_temperature"]] \
        == list(figures.TEMPERATURES)
    assert evaluate(tiny_onnx, data=TINY_DATA, titles=2, figure_seed=5)["title_figures"] == fig  # seeded: the same figures
    text = format_report(report)
    assert f"  {name}: LSTM {use['lstm']['ratio']:.3f}x, 3-gram " in text
    assert "samples from 2 held-out titles" in text and "title words T=1 " in text and "loops T=1 " in text
    assert "title_figures" not in evaluate(tiny_onnx, data=TINY_DATA, ngram=False, titles=0)


@pytest.mark.slow
def test_eval_of_the_stateless_format_agrees(tiny_onnx: Path, tiny_stateless_onnx: Path):
    from recipe_repl.export.evaluate import evaluate

    a = evaluate(tiny_onnx, data=TINY_DATA, ngram=False)["lstm"]
    b = evaluate(tiny_stateless_onnx, data=TINY_DATA, ngram=False)["lstm"]
    assert b["perplexity"] == pytest.approx(a["perplexity"], rel=1e-4)
    assert (a["top1"], a["top5"]) == (b["top1"], b["top5"])


@pytest.mark.slow
def test_eval_command_output_and_errors(tiny_onnx: Path, tmp_path: Path):
    r = CliRunner().invoke(eval_command, [str(tiny_onnx), "--batch-size", "2"])
    assert isinstance(r.exception, UserError) and "pass --data to evaluate on it" in str(r.exception)
    r = CliRunner().invoke(eval_command, [str(tiny_onnx), "--batch-size", "2", "--data", TINY_DATA])
    assert r.exit_code == 0, r.output
    assert "LSTM (ONNX)" in r.output and "Kneser-Ney 3-gram" in r.output and "perplexity ratio" in r.output
    r = CliRunner().invoke(eval_command, [str(tmp_path / "missing.onnx")])
    assert isinstance(r.exception, UserError) and "not found" in str(r.exception)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    r = CliRunner().invoke(eval_command, [str(tmp_path / "junk.onnx")])
    assert isinstance(r.exception, UserError) and "cannot load model" in str(r.exception)


@pytest.mark.slow
def test_model_card_reports_measured_figures(tiny_onnx: Path, tiny_run_dir: Path, tmp_path: Path):
    from recipe_repl.export.model_card import main

    out = tmp_path / "MODEL_CARD.md"
    r = CliRunner().invoke(main, [str(tiny_onnx), "--run", str(tiny_run_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    card = out.read_text()
    for heading in ("## Data", "## Model", "## Training", "## Held-out evaluation", "## Parity",
                    "## The lecture's next-word tables", "## Generation speed", "## Samples", "## Rebuild"):
        assert heading in card
    for prompt in ("recipe for roast", "recipe for roasted vegetables | chop 1 /", "recipe for chocolate ice cream |"):
        assert f"`{prompt}`" in card
    assert "--lr-schedule constant --epochs 2" in card  # the rebuild line is the run's own settings
    assert "Perplexity ratio LSTM / 3-gram" in card and "top-1 agreement" in card
    # both int8 variants measured: held-out perplexity, agreement and step time of each
    assert re.search(r"\| LSTM int8, output layer only \(`export --quantize int8-output`\) \| [\d.]+ \|", card)
    assert re.search(r"int8, output layer only: top-1 agreement with float32 [\d.]+%", card)
    assert re.search(r"\| int8 output layer only, stateful \| [\d.]+ \|", card)
    assert card.count("Recipe for") >= 6  # three samples at each of two temperatures
