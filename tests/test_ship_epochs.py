"""Shipping a few epochs (issue 20 §5): int8 copies of a run's epoch exports in the package, their top-1
agreement with float32, `:compare-models epochs`, and the tables `make epochs` rewrites. The end-to-end
run on a tiny trained run is in tests/test_watch_learning.py (TensorFlow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import onnx
import pytest
from recipe_repl.export import ship_epochs
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.model import contract
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.session.session import ModelSpec, Session
from tests.conftest import WORDS

TEXTS = ["recipe for roast chicken | mix salt and pepper , bake until golden brown .",
         "recipe for chicken | heat the oven , add salt , stir 1 / 2 cup with pepper ."]


@pytest.fixture(scope="module")
def epoch_run(tmp_path_factory) -> Path:
    """A run folder whose epochs/ holds float32 'exports' of epochs 1, 2, 4, 5 (random weights)."""
    run = tmp_path_factory.mktemp("run")
    (run / "epochs").mkdir()
    for epoch in (1, 2, 4, 5):
        meta = {contract.META_TRAINING: json.dumps({"checkpoint_epoch": epoch, "epochs": epoch}),
                contract.META_SAMPLE_TEXTS: json.dumps({"source": "test", "texts": TEXTS})}
        build_random_lstm(run / "epochs" / f"epoch-{epoch:03d}.onnx", WORDS, scale=1.5, seed=epoch, metadata=meta)
    return run


def held(model: Path) -> list[list[int]]:
    engine = OnnxEngine(model)
    return [engine.vocab.encode(t) for t in TEXTS]


def test_pick_epochs_takes_1_2_4_8_and_the_last() -> None:
    assert ship_epochs.pick_epochs(list(range(1, 33))) == [1, 2, 4, 8, 32]
    assert ship_epochs.pick_epochs([1, 2, 4, 5]) == [1, 2, 4, 5]
    assert ship_epochs.pick_epochs([3, 6, 9]) == [9]
    assert ship_epochs.pick_epochs([]) == []


def test_ship_writes_int8_epochs_with_their_agreement(epoch_run, tmp_path):
    exports = ship_epochs.kept_exports(epoch_run)
    assert sorted(exports) == [1, 2, 4, 5]
    out = tmp_path / "epochs"
    (out / "epoch-009.onnx").parent.mkdir()
    (out / "epoch-009.onnx").write_bytes(b"an earlier shipping")
    chosen = {e: exports[e] for e in ship_epochs.pick_epochs(sorted(exports))}
    shipped = ship_epochs.ship(chosen, out, held(exports[5]), val_loss={1: 3.2, 5: 2.1})
    assert [s.epoch for s in shipped] == [1, 2, 4, 5]
    assert sorted(p.name for p in out.iterdir()) == ["epoch-001.onnx", "epoch-002.onnx", "epoch-004.onnx",
                                                     "epoch-005.onnx", "epochs.json"]  # the stale file went
    for s in shipped:
        model = onnx.load(str(out / s.file))
        ops = {n.op_type for n in model.graph.node}
        assert "DynamicQuantizeLSTM" in ops and "MatMulInteger" in ops  # int8, every layer
        keys = {p.key for p in model.metadata_props}
        assert contract.META_VOCAB in keys and contract.META_SAMPLE_TEXTS not in keys
        assert 0.5 <= s.top1_agreement <= 1 and s.positions == sum(len(h) for h in held(exports[5]))
        assert s.bytes == (out / s.file).stat().st_size
        engine = OnnxEngine(out / s.file)  # still a self-describing model the runtime opens
        assert engine.info.training["checkpoint_epoch"] == s.epoch
    assert [s.val_loss for s in shipped] == [3.2, None, None, 2.1]
    assert ship_epochs.read_manifest(out) == shipped
    with pytest.raises(UserError, match="over the 0.001 MB budget"):
        ship_epochs.ship(chosen, tmp_path / "small", [], budget=1000)
    assert not (tmp_path / "small").exists()  # nothing written
    # trimmed: room for three of the four files keeps the first, the last and one between
    size = max(s.bytes for s in shipped)
    said: list[str] = []
    trimmed = ship_epochs.ship(chosen, tmp_path / "three", [], budget=3 * size, trim=True, report=said.append)
    assert [s.epoch for s in trimmed] == [1, 4, 5]
    assert sorted(p.name for p in (tmp_path / "three").glob("*.onnx")) == ["epoch-001.onnx", "epoch-004.onnx",
                                                                          "epoch-005.onnx"]
    assert said and "shipping epochs 1, 4, 5 (not 2)" in said[0]
    with pytest.raises(UserError, match="over the"):  # not even the first and the last fit
        ship_epochs.ship(chosen, tmp_path / "none", [], budget=size, trim=True)


def test_fit_budget_keeps_the_ends_and_spreads_the_rest() -> None:
    sizes = dict.fromkeys([1, 2, 4, 8, 40], 3)
    assert ship_epochs.fit_budget(sizes, 15) == [1, 2, 4, 8, 40]
    assert ship_epochs.fit_budget(sizes, 12) == [1, 4, 8, 40]
    assert ship_epochs.fit_budget(sizes, 9) == [1, 4, 40]
    assert ship_epochs.fit_budget(sizes, 1) == [1, 40]  # the ends stay: the caller says they do not fit


def test_compare_models_epochs_names_the_shipped_files(epoch_run, tmp_path, plugins, monkeypatch):
    from recipe_repl import models

    exports = ship_epochs.kept_exports(epoch_run)
    out = tmp_path / "epochs"
    ship_epochs.ship(exports, out, [])
    monkeypatch.setattr(models, "EPOCHS_DIR", out)
    err = io.StringIO()
    frontend = BatchFrontend(io.StringIO(), err)
    session = Session(plugins, frontend, ModelSpec(exports[5]), Settings(seed=1, max_tokens=3))
    status = BatchRunner(session, frontend).run(["recipe for roast", ":compare-models epochs rows 3"])
    assert status == 0, err.getvalue()
    header = next(line for line in err.getvalue().splitlines() if "epoch-001" in line)
    at = [header.index(f"epoch-00{e}") for e in (1, 2, 4, 5)]
    assert at == sorted(at)  # the shipped epochs, in epoch order
    assert "each model's own distribution (temperature 1, no processors)" in err.getvalue()
    monkeypatch.setattr(models, "EPOCHS_DIR", tmp_path / "none")
    status = BatchRunner(session, frontend).run([":compare-models epochs"])
    assert status == 1 and "this installation ships no epochs of its model" in err.getvalue()


def test_make_epochs_rewrites_the_card_and_readme_tables(epoch_run, tmp_path):
    exports = ship_epochs.kept_exports(epoch_run)
    out = tmp_path / "epochs"
    shipped = ship_epochs.ship(exports, out, [])
    card, readme = tmp_path / "CARD.md", tmp_path / "README.md"
    card.write_text(f"# card\n{ship_epochs.CARD_MARKS[0]}\nOLD-TABLE\n{ship_epochs.CARD_MARKS[1]}\nrest\n")
    readme.write_text(f"intro\n{ship_epochs.README_MARKS[0]}\nOLD-TABLE\n{ship_epochs.README_MARKS[1]}\nafter\n")
    ship_epochs.update_docs(out, shipped, card, readme)
    c, r = card.read_text(), readme.read_text()
    assert "OLD-TABLE" not in c and "| 4 | `epochs/epoch-004.onnx` |" in c and c.endswith("rest\n")
    assert "| | epoch 1 | epoch 2 | epoch 4 | epoch 5 |" in r and r.endswith("after\n") and "OLD-TABLE" not in r
    assert sum(line.startswith("|") for line in r.splitlines()) == 1 + 1 + ship_epochs.TABLE_ROWS  # head, rule, rows
    card.write_text("no marks")
    with pytest.raises(UserError, match="marks"):
        ship_epochs.update_docs(out, shipped, card, None)


def test_the_shipped_card_and_readme_have_the_marks() -> None:
    repo = Path(__file__).resolve().parents[1]
    for path, marks in ((repo / "models" / "MODEL_CARD.md", ship_epochs.CARD_MARKS),
                        (repo / "README.md", ship_epochs.README_MARKS)):
        text = path.read_text(encoding="utf-8")
        assert all(m in text for m in marks), path
