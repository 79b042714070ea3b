"""Watching a model learn: `train --keep-epochs` exports per epoch, `export --epoch`, `train --probe`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from recipe_repl.export.commands import export_command
from recipe_repl.train import checkpoint
from recipe_repl.train.callbacks import DEFAULT_PROBE, probe_line
from recipe_repl.train.commands import train_command
from recipe_repl.train.rundir import RunDir

from recipe_repl.base.errors import UserError
from recipe_repl.model import contract
from recipe_repl.model.engine import OnnxEngine
from tests.tiny import EPICURIOUS_SAMPLE

pytestmark = pytest.mark.slow

PROBE = "recipe for roast chicken |"
ARGS = ["--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--vocab-size", "300", "--embedding-dim", "16", "--units", "32",
        "--seq-len", "40", "--batch-size", "8", "--seed", "7"]


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory) -> tuple[Path, str]:
    """Three epochs, every epoch kept, probed: the run folder and what training printed."""
    out = tmp_path_factory.mktemp("kept") / "run"
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(out), "--epochs", "3", "--keep-epochs",
                                                "--probe", PROBE])
    assert result.exit_code == 0, result.output
    return out, result.output


def keras_logits(run_dir: Path, weights: Path, ids: list[int]) -> np.ndarray:
    """The Keras model of the run with these weights, on `ids` (the reference an export must match)."""
    from recipe_repl.train.model import build_model, compiled_forward

    run = RunDir(run_dir)
    cfg = run.config()
    model = build_model(len(run.vocab()[0]), cfg.embedding_dim, cfg.units, cfg.dropout)
    model.load_weights(str(weights))
    return compiled_forward(model)(np.array([ids], np.int32))[0]


def test_every_epoch_is_kept_and_its_export_matches_its_checkpoint(kept_run):
    run_dir, _ = kept_run
    run = RunDir(run_dir)
    assert run.kept_epochs() == [1, 2, 3]
    engine = OnnxEngine(run.epoch_model(1))
    ids = engine.vocab.encode("Recipe for roast chicken | Mix the salt and pepper, bake 20 minutes (until golden).")
    logits = []
    for epoch in (1, 2, 3):
        weights = run.epoch_weights(epoch)
        assert checkpoint.epoch_of(weights) == epoch
        engine = OnnxEngine(run.epoch_model(epoch))
        got, _ = engine.forward(np.array([ids]), engine.start(1))
        np.testing.assert_allclose(got[0], keras_logits(run_dir, weights, ids), atol=1e-4)
        assert engine.info.training["checkpoint_epoch"] == epoch and engine.info.training["epochs"] == epoch
        assert engine.info.parity["ok"] and engine.info.parity["max_abs_logit_diff"] <= 1e-4
        assert engine.info.parity["greedy_identical"]
        assert engine.info.sample_texts and engine.info.sample_source.startswith("validation split of epicurious")
        logits.append(got[0])
    assert np.abs(logits[0] - logits[2]).max() > 1e-3  # the epochs are different models
    last, _ = OnnxEngine(run.epoch_model(3)).forward(np.array([ids]), engine.start(1))
    np.testing.assert_allclose(last[0], keras_logits(run_dir, run.checkpoint_file, ids), atol=1e-4)


def test_training_prints_the_probe_beside_the_sample_and_each_kept_file(kept_run):
    run_dir, output = kept_run
    run = RunDir(run_dir)
    lines = output.splitlines()
    probes = [line for line in lines if line.startswith("probe ")]
    assert len(probes) == 3
    for epoch, line in enumerate(probes, start=1):
        # what training printed is the runtime's table for the probe on that epoch's exported model
        engine = OnnxEngine(run.epoch_model(epoch))
        assert line == f"probe “{PROBE}” → {probe_line(engine, engine.vocab.encode(PROBE))}"
        assert len(line.split(" · ")) == 5 and re.search(r"\d%$", line)
        at = lines.index(line)
        assert lines[at - 1].startswith("sample (T=1.0): ") and lines[at - 2].startswith(f"epoch {epoch}/3: loss")
        assert re.fullmatch(rf"kept epoch {epoch}: .*epoch-00{epoch}\.onnx \(parity max\|Δlogits\| \S+, [\d.]+ s\)",
                            lines[at + 1])


def test_export_epoch_exports_a_kept_checkpoint(kept_run, tmp_path):
    run_dir, _ = kept_run
    run = RunDir(run_dir)
    out = tmp_path / "again.onnx"
    result = CliRunner().invoke(export_command, [str(run_dir), "--epoch", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    again, kept = OnnxEngine(out), OnnxEngine(run.epoch_model(2))
    ids = kept.vocab.encode("recipe for roast chicken | bake")
    a, _ = again.forward(np.array([ids]), again.start(1))
    b, _ = kept.forward(np.array([ids]), kept.start(1))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert again.info.training["checkpoint_epoch"] == 2
    meta = json.loads(dict(again.session.get_modelmeta().custom_metadata_map)[contract.META_SAMPLE_TEXTS])
    assert len(meta["texts"]) == 3  # the sample's 3 validation recipes


def test_bad_epoch_arguments_give_one_line_and_write_nothing(kept_run, tmp_path):
    run_dir, _ = kept_run
    out = tmp_path / "x.onnx"
    result = CliRunner().invoke(export_command, [str(run_dir), "--epoch", "9", "--out", str(out)])
    assert isinstance(result.exception, UserError)
    assert str(result.exception) == f"{run_dir} has no checkpoint of epoch 9 (kept: 1, 2, 3)"
    result = CliRunner().invoke(export_command, [str(run_dir), "--epoch", "0", "--out", str(out)])
    assert result.exit_code == 2 and "Invalid value for '--epoch'" in result.output
    fresh = tmp_path / "fresh"
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(fresh), "--epochs", "1", "--keep-epochs", "0"])
    assert result.exit_code == 2 and "Invalid value for '--keep-epochs'" in result.output
    assert not out.exists() and not fresh.exists()


def test_resume_keeps_kept_epochs_and_fresh_sets_them_aside(kept_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(kept_run[0], run_dir)
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(run_dir), "--epochs", "4", "--resume",
                                                "--keep-epochs", "2", "--no-probe", "--quiet"])
    assert result.exit_code == 0, result.output
    assert RunDir(run_dir).kept_epochs() == [1, 2, 3, 4] and "probe " not in result.output
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(run_dir), "--epochs", "1", "--fresh", "--quiet"])
    assert result.exit_code == 0, result.output
    assert RunDir(run_dir).kept_epochs() == []  # the old run's epochs went with it


def test_probe_is_on_by_default_and_off_when_quiet(tmp_path):
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(tmp_path / "a"), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert f"probe “{DEFAULT_PROBE}” → " in result.output
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(tmp_path / "b"), "--epochs", "1", "--quiet"])
    assert result.exit_code == 0 and "probe " not in result.output
    assert not (tmp_path / "b" / "epochs").exists()


def test_a_kept_run_ships_its_epochs_int8_end_to_end(kept_run, tmp_path, monkeypatch):
    """`make epochs` on a tiny run: int8 copies of epochs 1, 2 and the last, their agreement with float32 on
    the run's own held-out recipes, the tables rewritten, and `:compare-models epochs` naming them."""
    import io

    from recipe_repl.export import ship_epochs

    from recipe_repl import models
    from recipe_repl.base.settings import Settings
    from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
    from recipe_repl.plugin.manager import Plugins
    from recipe_repl.session.session import ModelSpec, Session

    run_dir, _ = kept_run
    out = tmp_path / "epochs"
    card, readme = tmp_path / "CARD.md", tmp_path / "README.md"
    card.write_text("\n".join(ship_epochs.CARD_MARKS) + "\n")
    readme.write_text("\n".join(ship_epochs.README_MARKS) + "\n")
    result = CliRunner().invoke(ship_epochs.main, [str(run_dir), "--out", str(out), "--card", str(card),
                                                   "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    shipped = ship_epochs.read_manifest(out)
    assert [s.epoch for s in shipped] == [1, 2, 3]
    rows = {int(r["epoch"]): r["val_loss"] for r in RunDir(run_dir).log_rows()}
    for s in shipped:
        assert s.val_loss == pytest.approx(rows[s.epoch])
        assert 0.5 < s.top1_agreement <= 1 and s.positions > 100
        assert (out / s.file).stat().st_size < RunDir(run_dir).epoch_model(s.epoch).stat().st_size
    assert "| 3 | `epochs/epoch-003.onnx` |" in card.read_text()
    assert "| | epoch 1 | epoch 2 | epoch 3 |" in readme.read_text()
    monkeypatch.setattr(models, "EPOCHS_DIR", out)
    err = io.StringIO()
    frontend = BatchFrontend(io.StringIO(), err)
    session = Session(Plugins(load_third_party=False), frontend, ModelSpec(RunDir(run_dir).epoch_model(3)),
                      Settings(seed=1, max_tokens=3))
    assert BatchRunner(session, frontend).run(["recipe for roast", ":compare-models epochs"]) == 0, err.getvalue()
    assert "epoch-001.onnx · epoch 1" in err.getvalue() or "epoch-001" in err.getvalue()
