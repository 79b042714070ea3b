"""The training levers of issue 19 on the tiny model: tied embeddings (with and without the projection)
and the sampled softmax train to a finite loss, export through the parity check to the contract's
graph, and validation stays the full softmax (eval of the exported file reproduces it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from recipe_repl.train.commands import train_command
from recipe_repl.train.rundir import RunDir

from recipe_repl.base.errors import UserError
from tests.tiny import TINY, tiny_config

pytestmark = pytest.mark.slow

LEVERS = {
    "tied, projection": {"tie_embeddings": True},  # embedding 16, LSTM 32: a projection in between
    "tied, no projection": {"tie_embeddings": True, "embedding_dim": 32},
    "sampled softmax": {"sampled_softmax": 40},
    "tied, sampled softmax": {"tie_embeddings": True, "sampled_softmax": 40, "dropout": 0.2},
    "word dropout": {"word_dropout": 0.3},
}


@pytest.mark.parametrize("name", list(LEVERS))
def test_lever_trains_and_exports_with_parity(name: str, tmp_path: Path):
    from recipe_repl.export.evaluate import evaluate
    from recipe_repl.export.exporter import export_run
    from recipe_repl.train.loop import train

    result = train(tiny_config(**LEVERS[name]), tmp_path / "run", quiet=True)
    for row in result.history:
        assert math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])
    exported = export_run(tmp_path / "run", tmp_path / "m.onnx", quiet=True)
    assert exported.parity["ok"] and exported.parity["max_abs_logit_diff"] <= 1e-4
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [o.name for o in graph.output] == ["logits", "h", "c"]
    assert "LSTM" in [n.op_type for n in graph.node]
    # validation is the full softmax whatever the training loss: eval of the file gives the same number
    report = evaluate(tmp_path / "m.onnx", data=tiny_config().data, ngram=False, titles=0)
    val_loss = json.loads((tmp_path / "run" / "training.json").read_text())["final_val_loss"]
    assert report["lstm"]["nll"] == pytest.approx(val_loss, rel=1e-4)


def test_tied_export_folds_the_output_layer_into_the_usual_dense_shape(tmp_path: Path):
    from recipe_repl.export.convert import load_run
    from recipe_repl.train.loop import train
    from recipe_repl.train.model import LOGITS, inference_weights, is_tied

    train(tiny_config(tie_embeddings=True, epochs=1), tmp_path / "run", quiet=True)
    loaded = load_run(tmp_path / "run")
    assert is_tied(loaded.model)
    weights = inference_weights(loaded.model)
    vocab = len(loaded.words)
    assert weights[LOGITS][0].shape == (TINY["units"], vocab) and weights[LOGITS][1].shape == (vocab,)
    # one table: the tied model has fewer weights than the untied one of the same sizes
    untied = sum(w.size for ws in weights.values() for w in ws)
    tied = sum(int(math.prod(v.shape)) for v in loaded.model.weights)
    assert tied < untied


def test_lever_flags_reach_the_run_and_resume_keeps_them(tmp_path: Path):
    out = tmp_path / "run"
    args = ["--data", tiny_config().data, "--out", str(out), "--vocab-size", "300", "--embedding-dim", "16",
            "--units", "32", "--seq-len", "40", "--batch-size", "8", "--epochs", "1", "--quiet",
            "--tie-embeddings", "--sampled-softmax", "30", "--no-clean"]
    r = CliRunner().invoke(train_command, args)
    assert r.exit_code == 0, r.output
    cfg = RunDir(out).config()
    assert cfg.tie_embeddings and cfg.sampled_softmax == 30 and not cfg.clean
    r = CliRunner().invoke(train_command, [*args[:-5], "--epochs", "2", "--resume", "--sampled-softmax", "10"])
    assert isinstance(r.exception, UserError) and "--sampled-softmax" in str(r.exception)
    r = CliRunner().invoke(train_command, [*args[:-5], "--epochs", "2", "--resume"])
    assert r.exit_code == 0, r.output
    assert RunDir(out).config().sampled_softmax == 30
    r = CliRunner().invoke(train_command, [*args[:-5], "--epochs", "1", "--sampled-softmax", "-1", "--fresh"])
    assert isinstance(r.exception, UserError) and "--sampled-softmax" in str(r.exception)
