"""Inside the LSTM: :cells N / c N / find / top / features, the cell-feature hook, and :compare-models."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from recipe_repl.export.random_model import build_paren_lstm, build_random_lstm
from rich.console import Console

from recipe_repl.base.errors import ModelError
from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.generate import cells
from recipe_repl.generate.sampling import Sampler
from recipe_repl.model import contract
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.plugin.commands import COMPARE_ROWS
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views import cell_view
from recipe_repl.views.render import percent, print_safe
from tests.conftest import WORDS
from tests.helpers import lines, run_script

PAREN_UNIT = 5
TEXTS = [
    "mix salt ( 1 / 2 cup ) and pepper . bake ( until golden brown ) minutes",
    "recipe for roast chicken | add ( salt ) , stir ( 2 cup ) serve",
    "heat oven . bake chicken until golden ( 1 / 2 ) minutes ; serve with salt",
    "recipe for roast | mix the salt and pepper . serve",
]
VALUE_RE = re.compile(r"(\S+?)\(([+-]\d+\.\d\d)\)")


def batch(model: Path, plugins, text: str, settings: Settings | None = None) -> tuple[str, str, int, Session]:
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(model), settings or Settings(seed=1, max_tokens=10))
    status = BatchRunner(session, frontend).run(text.splitlines())
    return out.getvalue(), err.getvalue(), status, session


def shown_values(text: str) -> list[tuple[str, float]]:
    """(word, value) pairs of a no-colour cell view: `word(+0.42)`."""
    return [(w, float(v)) for w, v in VALUE_RE.findall(text)]


def state_after_each_prefix(engine: OnnxEngine, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """h and c after each word, by feeding every prefix at once from a fresh state (not word by word)."""
    hs, cs = [], []
    for k in range(1, len(ids) + 1):
        _, state = engine.forward(np.array([ids[:k]]), engine.start(1))
        hs.append(state.arrays[0][0])
        cs.append(state.arrays[1][0])
    return np.array(hs), np.array(cs)


@pytest.fixture(scope="module")
def paren_model(tmp_path_factory) -> Path:
    """A hand-set LSTM whose unit 5 counts open parentheses, bundling the texts above."""
    meta = {contract.META_SAMPLE_TEXTS: json.dumps({"source": "test texts", "texts": TEXTS})}
    return build_paren_lstm(tmp_path_factory.mktemp("paren") / "paren.onnx", WORDS, unit=PAREN_UNIT,
                            metadata=meta)


# --- the activations shown are the engine's own state ---------------------------------------------------


def test_trace_equals_the_state_the_engine_returns_for_the_same_words(random_model):
    engine = OnnxEngine(random_model)
    texts = [engine.vocab.encode(t) for t in TEXTS]
    traces = cells.trace(engine, texts)  # four rows of different lengths stepped together
    for ids, found in zip(texts, traces, strict=True):
        h, c = state_after_each_prefix(engine, ids)
        assert found.words == [engine.vocab.words[i] for i in ids]
        np.testing.assert_allclose(found.h, h, atol=1e-5)
        np.testing.assert_allclose(found.c, c, atol=1e-5)
        assert np.abs(found.c).max() > 0.5  # a real state, not zeros


@pytest.mark.parametrize("kind, index", [("h", 0), ("c", 1)])
def test_cells_n_text_shows_the_engine_state_of_that_unit(random_model, plugins, kind, index):
    text = "mix salt ( 1 / 2 cup ) and pepper ."
    command = f":cells {'c ' if kind == 'c' else ''}3 {text}"
    run = run_script(random_model, plugins, lines(command))
    engine = run.session.engine
    ids = engine.vocab.encode(text)
    want = state_after_each_prefix(engine, ids)[index][:, 3]
    shown = shown_values(run.out)
    assert [w for w, _ in shown] == [engine.vocab.words[i] for i in ids]
    np.testing.assert_allclose([v for _, v in shown], want, atol=0.0051)
    name = "hidden state h" if kind == "h" else "memory cell c"
    assert f"unit 3 of the {name} after each word of the given text" in run.out
    lo, hi = int(want.argmin()), int(want.argmax())
    assert f"min {want[lo]:+.2f} after “{engine.vocab.words[ids[lo]]}” (word {lo + 1})" in run.out
    assert f"max {want[hi]:+.2f}" in run.out


def test_cells_n_shows_the_last_sample_prompt_and_generated_words(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 8", "recipe for roast chicken", ":cells 7"))
    sample = run.session.last_samples[0]
    engine = run.session.engine
    ids = engine.vocab.encode("recipe for roast chicken") + sample.token_ids
    shown = shown_values(run.out.split("unit 7 of the hidden state h", 1)[1])
    assert [w for w, _ in shown] == sample.prompt_words + sample.words
    np.testing.assert_allclose([v for _, v in shown], state_after_each_prefix(engine, ids)[0][:, 7], atol=0.0051)
    assert "of the last sample" in run.out


def test_colour_view_sets_a_diverging_background_and_a_legend():
    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system="truecolor", force_terminal=True)
    console.print(cell_view.Activations(["salt", "pepper", "oven"], [-1.0, 0.0, 0.9], 1.0))
    console.print(cell_view.Legend(1.0))
    out = buf.getvalue()
    assert "48;2;5;48;97" in out  # −1: the darkest blue background
    assert "48;2;247;247;247" in out  # 0: white
    assert "48;2;103;0;31" in out  # +0.9 rounds to the darkest red step
    assert "(+" not in out and "−1" in out and "+1" in out
    assert cell_view.level(-0.3, 1.0) == -2 and cell_view.level(7.0, 5.0) == 5 and cell_view.level(0.04, 1.0) == 0
    assert cell_view.nice_scale(np.array([0.3, -13.2]), "c") == 20 and cell_view.nice_scale(np.array([9.0]), "h") == 1


def test_no_colour_console_gets_the_numbers():
    buf = io.StringIO()
    Console(file=buf, width=80, color_system="truecolor", force_terminal=True, no_color=True).print(
        cell_view.Activations(["salt", ","], [0.123, -0.001], 1.0))
    assert buf.getvalue().strip() == "salt(+0.12) ,(+0.00)"


# --- :cells find ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["h", "c"])
def test_find_ranks_the_unit_that_follows_the_feature_first(paren_model, plugins, kind):
    _, err, status, session = batch(paren_model, plugins, f":cells find {kind} paren\n")
    assert status == 0, err
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+([+-]\d\.\d{3})", err, re.MULTILINE)
    assert rows[0][:2] == ("1", str(PAREN_UNIT)) and float(rows[0][2]) > 0.99
    assert len(rows) == 10 and all(abs(float(r)) < 0.99 for _, _, r in rows[1:])
    # the figures are Pearson's r over every word of the bundled texts, as numpy computes it
    engine = session.engine
    traces = cells.trace(engine, [engine.vocab.encode(t) for t in TEXTS])
    acts = np.concatenate([t.values(kind) for t in traces])
    feature = np.concatenate([cells.paren(t.words) for t in traces])
    for _, unit, r in rows:
        assert float(r) == pytest.approx(np.corrcoef(acts[:, int(unit)], feature)[0, 1], abs=6e-4)
    words = sum(len(t.words) for t in traces)
    flat = " ".join(err.split())
    assert f"over 4 texts bundled with the model (test texts): {words} words" in flat
    assert f":cells {'c ' if kind == 'c' else ''}{PAREN_UNIT} shows unit {PAREN_UNIT}" in flat


def test_find_reads_a_file_or_the_last_samples(random_model, plugins, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    _, err, status, _ = batch(random_model, plugins, f":cells find number {path}\n")
    assert status == 0 and "over 4 texts of texts.txt" in err
    _, err, status, _ = batch(random_model, plugins, ":n 3\nrecipe for roast\n:cells find sentence\n",
                              Settings(seed=2, max_tokens=30))
    assert status == 0 and "over the last 3 samples" in err


def test_built_in_features_word_by_word():
    words = "recipe for x | step 1 . add 1 / 2 cup ( 8 - ounce ) salt .".split()
    assert len(words) == 19
    assert cells.paren(words) == [0] * 12 + [1, 1, 1, 1] + [0] * 3
    assert cells.number(words) == [0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    assert cells.quantity(words) == [0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    assert cells.sentence(words) == [1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]
    assert cells.step(words) == [0] * 5 + list(range(1, 15))


PLUGIN = """
from recipe_repl.plugin.hookspecs import hookimpl


@hookimpl
def register_cell_features(register):
    register("opener", lambda words: [1.0 if w == "(" else 0.0 for w in words], help="the word (")
    register("broken", lambda words: 1 / 0)
    register("short", lambda words: [0.0, 1.0])
    register("paren", lambda words: [0.0] * len(words))  # taken by a built-in: refused
"""


def test_a_plugin_registers_features(paren_model, tmp_path):
    path = tmp_path / "feats.py"
    path.write_text(PLUGIN, encoding="utf-8")
    reported: list[str] = []
    plugins = Plugins(modules=[str(path)], entry_points=False, report=reported.append)
    assert sorted(plugins.features) == ["broken", "number", "opener", "paren", "quantity", "sentence", "short", "step"]
    assert plugins.infos[str(path)].features == ["opener", "broken", "short"]
    assert reported == [f"plugin {path}: feature 'paren' not registered: already registered by "
                        "builtin:cells_commands (ask for override to replace it)"]
    _, err, status, _ = batch(paren_model, plugins, ":cells features\n:cells find opener\n:cells find broken\n"
                                                    ":cells find short\n")
    flat = " ".join(err.split())
    assert "opener the word (" in flat and "feats.py" in flat
    assert "units of the hidden state h that follow “opener” (the word ()" in flat
    assert f"line 3: error: feature broken (plugin {path}) failed: ZeroDivisionError: division by zero" in err
    assert f"line 4: error: feature short (plugin {path}) gave 2 values for" in err
    assert status == 1


# --- :cells top -----------------------------------------------------------------------------------------


def test_top_shows_the_five_units_that_moved_most(random_model, plugins):
    out, err, status, session = batch(random_model, plugins, "recipe for roast chicken\n:cells top\n:cells top c\n")
    assert status == 0
    engine = session.engine
    sample = session.last_samples[0]
    ids = engine.vocab.encode("recipe for roast chicken") + sample.token_ids
    for kind, values in zip("hc", state_after_each_prefix(engine, ids), strict=True):
        moved = np.abs(np.diff(values, axis=0)).sum(axis=0)
        want = list(np.argsort(-moved, kind="stable")[:5])
        labels = re.findall(rf"^\s*({kind}\d+) │", err, re.MULTILINE)
        assert labels[:5] == [f"{kind}{u}" for u in want]
        line = next(row for row in err.splitlines() if row.strip().startswith(f"{kind}{want[0]} │"))
        first = shown_values(line)[0]
        assert first[1] == pytest.approx(values[0, want[0]], abs=0.0051)


# --- bad arguments and stateless models -----------------------------------------------------------------


USAGE = "usage: :cells [c] N [TEXT] | find [c] FEATURE [FILE] | top [c] | features, e.g. :cells find paren " \
        "(see :help cells)"


@pytest.mark.parametrize("line, message", [
    (":cells", USAGE),
    (":cells x", "a unit is a number, not 'x' — e.g. :cells find paren"),
    (":cells 99", "no unit 99: this model's LSTM has 16 units, numbered 0 to 15 — e.g. :cells 15"),
    (":cells -1 roast", "no unit -1"),
    (":cells c", f"which unit? — {USAGE}"),
    (":cells find", f"which feature? number, paren, quantity, sentence, step — {USAGE}"),
    (":cells find zzz", "unknown feature 'zzz': choose number, paren, quantity, sentence, step — e.g. :cells find paren"),
    (":cells find paren /no/such/file.txt", "cannot read /no/such/file.txt"),
    (":cells find paren a b", f"too many arguments — {USAGE}"),
    (":cells top extra", f"too many arguments — {USAGE}"),
    (":cells features x", f"no arguments expected after features — {USAGE}"),
])
def test_bad_arguments_give_one_line_and_change_nothing(random_model, plugins, line, message):
    out, err, status, session = batch(random_model, plugins, f"recipe for roast\n:temp 0.7\n{line}\n")
    before = session.last_samples
    errors = [e for e in err.splitlines() if e.startswith("line 3:")]
    assert status == 1 and len(errors) == 1 and message in errors[0], err
    assert session.settings.temperature == 0.7 and session.last_samples is before
    assert "Traceback" not in err


def test_no_sample_yet_and_no_texts(random_model, plugins):
    _, err, status, _ = batch(random_model, plugins, ":cells 2\n:cells top\n:cells find paren\n")
    assert status == 1
    assert "line 1: error: no sample yet: type a prompt first, then :cells 2" in err
    assert "line 2: error: no sample yet: type a prompt first, then :cells top" in err
    assert "line 3: error: no texts to search: this model bundles none" in err


def test_a_stateless_model_needs_a_stateful_one(plugins, tmp_path):
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps(WORDS), encoding="utf-8")
    model = build_random_lstm(tmp_path / "lecture.onnx", WORDS, stateless=True)
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(model, vocab=vocab), Settings(seed=1, max_tokens=4))
    status = BatchRunner(session, frontend).run(["roast", ":cells 1", ":cells find paren", ":cells top",
                                                 ":cells 1 salt"])
    errors = err.getvalue().splitlines()
    assert status == 1 and len(errors) == 4
    assert all("the cell views need a stateful model" in e and "lecture.onnx is stateless" in e for e in errors)


def test_bundled_texts_are_read_bounded_and_checked(tmp_path):
    meta = {contract.META_SAMPLE_TEXTS: json.dumps({"source": "s", "texts": ["x" * 30_000] * 300})}
    info = OnnxEngine(build_random_lstm(tmp_path / "m.onnx", WORDS, metadata=meta)).info
    assert len(info.sample_texts) == 256 and len(info.sample_texts[0]) == 20_000 and info.sample_source == "s"
    bad = {contract.META_SAMPLE_TEXTS: json.dumps({"texts": "not a list"})}
    with pytest.raises(ModelError, match="holds no list of texts"):
        OnnxEngine(build_random_lstm(tmp_path / "bad.onnx", WORDS, metadata=bad))
    assert OnnxEngine(build_random_lstm(tmp_path / "none.onnx", WORDS)).info.sample_texts == ()


# --- :compare-models ------------------------------------------------------------------------------------


def test_compare_models_puts_each_models_table_side_by_side(random_model, plugins, tmp_path):
    other = build_random_lstm(tmp_path / "other.onnx", WORDS, scale=1.5, seed=4,
                              metadata={contract.META_TRAINING: json.dumps({"checkpoint_epoch": 7})})
    settings = Settings(seed=1, max_tokens=4, temperature=0.8)
    # `:probs every 3` sets the tables during generation, not :compare-models' rows (its own: 8, or rows N)
    _, err, status, session = batch(random_model, plugins, f":probs every 3\nrecipe for roast\n:probs off\n"
                                    f":compare-models {random_model} {other}\n", settings)
    assert status == 0, err
    header = next(line for line in err.splitlines() if "random.onnx" in line)
    assert header.index("random.onnx") < header.index("other.onnx · epoch 7")
    rows = [re.findall(r"(\S+) (<?[\d.]+%)", line) for line in err.splitlines() if re.match(r"\s*\d+ │", line)]
    ids = session.engine.vocab.encode("recipe for roast")
    for column, path in enumerate((random_model, other)):
        engine = OnnxEngine(path)
        out, _ = engine.forward(np.array([ids]), engine.start(1))
        probs = Sampler(settings, plugins.processor_specs(), engine.vocab).distribution(out[:, -1], [ids])[0]
        top = [i for i in np.argsort(-probs, kind="stable")[:COMPARE_ROWS] if probs[i] > 0]
        want = [((engine.vocab.words[i] or "[end]"), percent(float(probs[i]))) for i in top]
        assert [row[column] for row in rows] == want
    assert session.model.path == random_model  # the session's own model stays
    _, err, status, _ = batch(random_model, plugins, f"recipe for roast\n:compare-models {random_model} {other} rows 3\n")
    assert status == 0 and len([line for line in err.splitlines() if re.match(r"\s*\d+ │", line)]) == 3


def test_compare_models_refuses_other_vocabularies_and_bad_arguments(random_model, plugins, tmp_path):
    other = build_random_lstm(tmp_path / "small.onnx", WORDS[:-3])
    text = (f":compare-models {random_model}\nrecipe for roast\n:compare-models\n"
            f":compare-models {other}\n:compare-models {tmp_path / 'nope.onnx'}\n"
            f":compare-models {' '.join([str(random_model)] * 7)}\n")
    _, err, status, session = batch(random_model, plugins, text)
    errors = err.splitlines()
    assert status == 1 and len(errors) == 5, err
    assert errors[0] == "line 1: error: no prompt yet: type a prompt (e.g. recipe for roast), then " \
                        ":compare-models A.onnx B.onnx"
    assert errors[1] == ("line 3: error: usage: :compare-models epochs | A.onnx [B.onnx …] [rows N], "
                         "e.g. :compare-models epochs (see :help compare-models)")
    assert errors[2] == ("line 4: error: random.onnx and small.onnx have different vocabularies (40 and 37 words): "
                         ":compare-models needs models of one vocabulary, such as the epochs of one run "
                         "(recipe-repl train --keep-epochs)")
    assert errors[3] == (f"line 5: error: no model file '{tmp_path / 'nope.onnx'}' — "
                         "e.g. :compare-models epochs")
    assert errors[4].startswith("line 6: error: at most 6 models side by side, not 7 — usage: :compare-models")
    assert session.model.path == random_model and len(session.engine.vocab) == len(WORDS)


def test_compare_models_takes_a_pattern(plugins, tmp_path):
    for epoch in (1, 2, 3):
        build_random_lstm(tmp_path / f"epoch-00{epoch}.onnx", WORDS, seed=epoch,
                          metadata={contract.META_TRAINING: json.dumps({"checkpoint_epoch": epoch})})
    _, err, status, _ = batch(tmp_path / "epoch-003.onnx", plugins, f"roast\n:compare-models {tmp_path}/epoch-*.onnx\n")
    assert status == 0, err
    header = next(line for line in err.splitlines() if "epoch-001.onnx" in line)
    assert header.index("epoch 1") < header.index("epoch 2") < header.index("epoch 3")


def test_what_a_model_file_bundles_is_shown_escaped(plugins, tmp_path):
    meta = {contract.META_SAMPLE_TEXTS: json.dumps({"source": "evil\x1b[2J\u202e", "texts": TEXTS})}
    model = build_paren_lstm(tmp_path / "evil.onnx", WORDS, metadata=meta)
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system="truecolor", force_terminal=True)
    session = Session(plugins, BatchFrontend(io.StringIO(), io.StringIO()), ModelSpec(model), Settings(seed=1))
    session.frontend.show = lambda renderable: print_safe(console, renderable)  # type: ignore[method-assign]
    session.run_command(":cells find paren")
    session.run_command(":cells 5 ( salt \x1b[31m )")
    out = buf.getvalue()
    assert "evil\\x1b[2J\\u202e" in out and "\u202e" not in out and "\x1b[2J" not in out
    assert "[UNK]" in out.split("unit 5 of the hidden state h", 1)[1]  # the typed ESC is no word of the model
