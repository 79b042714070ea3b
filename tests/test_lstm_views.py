"""Cause and effect inside the LSTM: :saliency, :gates, :units-for, :vs-ngram, :ablate, :clamp, :patch."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from recipe_repl.export.kneser_ney import KneserNey3
from recipe_repl.export.random_model import build_random_lstm, write_lstm

from recipe_repl.base.errors import ModelError
from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.generate import influence
from recipe_repl.generate.inspection import model_distribution, next_logits
from recipe_repl.generate.lstm_model import lstm_model
from recipe_repl.model import contract, ngram
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.model.numpy_lstm import NumpyEngine, log_softmax
from recipe_repl.model.vocab import PAD_ID, UNK_ID
from recipe_repl.session.session import ModelSpec, Session
from tests.conftest import WORDS

TEXT = "recipe for roast chicken | mix salt ( 1 / 2 cup ) and pepper . bake until golden brown"
UNIT, WORD = 3, "golden"  # the hand-built model's unit that writes WORD
SHORT = Settings(seed=1, max_tokens=6)  # continuations that fit on one line


def batch(model: Path, plugins, text: str, settings: Settings | None = None,
          vocab: Path | None = None) -> tuple[str, str, int, Session]:
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(model, vocab=vocab), settings or Settings(seed=1, max_tokens=12))
    status = BatchRunner(session, frontend).run(text.splitlines())
    return out.getvalue(), err.getvalue(), status, session


@pytest.fixture(scope="module")
def golden_model(tmp_path_factory) -> Path:
    """A hand-built LSTM: unit 3 holds h ≈ 0.76 at every word and is the only way to “golden”."""
    rng = np.random.default_rng(2)
    H, D, V = 8, 6, len(WORDS)
    W = (rng.standard_normal((1, 4 * H, D)) * 0.3).astype(np.float32)
    R = (rng.standard_normal((1, 4 * H, H)) * 0.3).astype(np.float32)
    B = np.zeros((1, 8 * H), np.float32)
    for gate in range(4):  # ONNX order i, o, f, c: unit 3 reads nothing, only its biases
        W[0, gate * H + UNIT] = 0.0
        R[0, gate * H + UNIT] = 0.0
    B[0, 0 * H + UNIT], B[0, 1 * H + UNIT], B[0, 2 * H + UNIT], B[0, 3 * H + UNIT] = 9.0, 9.0, -9.0, 3.0
    Wd = (rng.standard_normal((H, V)) * 0.3).astype(np.float32)
    Wd[UNIT] = 0.0
    Wd[UNIT, WORDS.index(WORD)] = 12.0
    weights = {"E": (rng.standard_normal((V, D)) * 0.5).astype(np.float32), "W": W, "R": R, "B": B, "Wd": Wd,
               "bd": np.zeros(V, np.float32)}
    return write_lstm(tmp_path_factory.mktemp("golden") / "golden.onnx", WORDS, weights)


@pytest.fixture(scope="module")
def counted_model(tmp_path_factory) -> Path:
    """The random model carrying the 3-gram counts of a few texts (as export stores them)."""
    vocab_ids = [[WORDS.index(w) if w in WORDS else UNK_ID for w in t.split()] + [PAD_ID] for t in CORPUS]
    uvw, counts = ngram.count_trigrams(vocab_ids, len(WORDS))
    meta = {contract.META_NGRAM: ngram.encode(uvw, counts, len(WORDS), "test corpus")}
    return build_random_lstm(tmp_path_factory.mktemp("ngram") / "counted.onnx", WORDS, scale=1.5, metadata=meta)


CORPUS = ["recipe for roast chicken | mix salt and pepper . bake until golden brown",
          "recipe for roast | heat oven . add salt , stir and serve",
          "mix 1 / 2 cup salt with pepper . bake 2 minutes in oven until brown",
          "recipe for chicken | stir the salt into a cup of pepper . serve"]


# --- :saliency -------------------------------------------------------------------------------------------


def test_occlusion_equals_a_direct_computation(random_model):
    engine = OnnxEngine(random_model)
    model = lstm_model(engine)
    ids = engine.vocab.encode(TEXT + " [UNK] salt")
    k = len(ids)
    logp, delta = influence.occlusion(model, ids, k)

    def direct(text: list[int]) -> float:
        logits, _ = engine.forward(np.array([text[:k - 1]]), engine.start(1))
        return float(log_softmax(logits[0, -1])[ids[k - 1]])

    assert logp == pytest.approx(direct(ids), abs=1e-6)
    for j in range(k - 1):
        hidden = list(ids)
        hidden[j] = UNK_ID
        assert delta[j] == pytest.approx(logp - direct(hidden), abs=1e-5), j
    assert delta[ids.index(UNK_ID)] == 0.0
    near = influence.occlusion(model, ids, k, reach=4)[1]
    assert np.isnan(near[:k - 5]).all() and np.allclose(near[k - 5:], delta[k - 5:], atol=1e-5)


def test_saliency_names_both_methods_and_ranks_what_occlusion_measures(random_model, plugins):
    # seed 2: a sample that runs past word 12 (seed 1's ends on the stop token as word 12)
    _, err, status, session = batch(random_model, plugins, "recipe for roast chicken |\n:saliency 12\n",
                                    Settings(seed=2, max_tokens=12))
    assert status == 0, err
    text = session.last_samples[0]
    ids = session.engine.vocab.encode("recipe for roast chicken |") + text.token_ids
    delta = influence.occlusion(lstm_model(session.engine), ids, 12)[1]
    j = int(np.argmax(np.abs(delta)))
    assert f"which words made word 12 “{session.engine.vocab.words[ids[11]]}” likely" in err
    assert "occlusion — Δ log p when the word is read as [UNK]" in err and "gradient × input" in err
    row = next(line for line in err.splitlines() if line.startswith("1 "))
    assert f" {j + 1} " in row and f"{delta[j]:+.2f}".replace("-", "−") in row
    assert "how far back words matter" in err and "41–80" in err


def test_distance_profile_averages_gradient_times_input_by_distance(random_model):
    engine = OnnxEngine(random_model)
    model = lstm_model(engine)
    ids = engine.vocab.encode(TEXT)
    profile = influence.distance_profile(model, ids)
    sal = np.abs(influence.gradient_x_input(model, ids, list(range(2, len(ids) + 1))))
    one_back = [sal[k - 2, k - 2] for k in range(2, len(ids) + 1)]  # word k-1 for each word k
    assert profile.mean[0] == pytest.approx(np.mean(one_back), rel=1e-4)
    assert profile.pairs[0] == len(ids) - 1 and profile.targets == len(ids) - 1


# --- :gates ----------------------------------------------------------------------------------------------


def test_gates_show_one_unit_and_the_summary(random_model, plugins):
    _, err, status, session = batch(random_model, plugins, "recipe for roast\n:gates f 4\n:gates\n")
    assert status == 0, err
    assert "unit 4's gates at each word of the last sample" in err
    strip = err.split("unit 4's gates", 1)[1]
    labels = [line.split("│")[0].strip() for line in strip.splitlines() if "│" in line]
    assert labels[0] == "f forget" and {"i input", "o output", "g candidate", "c cell", "i·g written"} <= set(labels)
    assert "forget gates over" in err and "integrator" in err and "resetter" in err


def test_gate_summary_counts_saturated_forget_gates(random_model, plugins):
    from recipe_repl.generate import gates

    engine = OnnxEngine(random_model)
    model = lstm_model(engine)
    texts = [engine.vocab.encode(t) for t in CORPUS]
    traces, forget = gates.trace_texts(model, texts)
    sat = gates.saturation(forget, len(texts))
    f = np.concatenate([gates.forward(model.weights, np.array([t]), logits=False).f[0] for t in texts])
    np.testing.assert_allclose(sat.integrator, (f > 0.9).mean(0))
    np.testing.assert_allclose(sat.resetter, (f < 0.1).mean(0))
    assert sat.words == sum(len(t) for t in texts)
    assert [len(t.words) for t in traces] == [len(t) for t in texts]


# --- :units-for ------------------------------------------------------------------------------------------


def test_units_for_contributions_and_bias_sum_to_the_logit(random_model, plugins):
    from recipe_repl.generate.interventions import contributions

    engine = OnnxEngine(random_model)
    model = lstm_model(engine)
    ids = engine.vocab.encode(TEXT)
    for word in (WORDS.index("cup"), PAD_ID):
        split = contributions(model, ids, word)
        logits = next_logits(engine, ids)
        assert split.total == pytest.approx(float(logits[word]), abs=1e-5)
        assert split.logit == pytest.approx(float(logits[word]), abs=1e-6)
    _, err, status, _ = batch(random_model, plugins, f"{TEXT}\n:units-for cup\n:units-for salt at 3\n")
    assert status == 0, err
    assert "units that raise the logit of “cup” after the last sample" in err
    assert "units that raise the logit of “salt” before word 3 of the last sample" in err
    assert re.search(r"Σ contributions [+-]\d+\.\d{3} \+ bias [+-]\d+\.\d{3} = ([+-]\d+\.\d{3}); the engine's logit \1",
                     err)


# --- :ablate, :clamp, :patch -----------------------------------------------------------------------------


def top_word(session: Session, prompt: str) -> str:
    engine = session.engine
    probs = model_distribution(next_logits(engine, engine.vocab.encode(prompt)))
    return engine.vocab.words[int(np.argmax(probs))]


@pytest.mark.parametrize("command", [f":ablate h {UNIT}", f":ablate c {UNIT}", f":ablate {UNIT} 5",
                                     f":clamp c {UNIT} 0", f":ablate h {UNIT} from 3"])
def test_ablating_the_unit_that_writes_a_word_removes_it_from_the_top(golden_model, plugins, command):
    _, err, status, session = batch(golden_model, plugins, f"recipe for roast\n{command}\n")
    assert status == 0, err
    assert isinstance(session.engine, NumpyEngine)
    base = session.engine.base
    assert top_word(session, "recipe for roast") != WORD
    plain = model_distribution(next_logits(base, base.vocab.encode("recipe for roast")))
    assert base.vocab.words[int(np.argmax(plain))] == WORD
    table = err.split("next word after", 1)[1]
    first = next(line for line in table.splitlines() if line.startswith("1 "))
    assert first.split("│")[1].strip().startswith(WORD) and not first.split("│")[2].strip().startswith(WORD)
    assert "the continuation, drawn twice from the same random numbers" in err


def test_ablation_from_a_later_word_leaves_the_earlier_ones(golden_model, plugins):
    _, err, status, session = batch(golden_model, plugins, f"recipe for roast\n:ablate h {UNIT} from 4\n")
    assert status == 0, err
    assert top_word(session, "recipe for roast") == WORD  # word 4 is not read yet
    assert top_word(session, "recipe for roast chicken") != WORD


def test_ablate_off_restores_the_model_and_continue_works_across(golden_model, plugins):
    script = f"recipe for roast\n:ablate h {UNIT}\n:continue\n:ablate\n:ablate off\n:continue\nrecipe for roast\n"
    out, err, status, session = batch(golden_model, plugins, script, Settings(seed=3, max_tokens=6))
    assert status == 0, err
    assert isinstance(session.engine, OnnxEngine)
    assert f"held: h {UNIT} = 0 (:ablate off restores the model)" in err
    assert f"h {UNIT} = 0 released: the model as trained again" in err
    from recipe_repl.generate.loop import Request, generate

    [last] = session.last_samples
    [plain] = generate(OnnxEngine(golden_model), [Request("recipe for roast", key=last.key)], session.settings,
                       plugins.processor_specs())
    assert out.splitlines()[-1] == last.text == plain.text  # the model as trained again: the same draw


def test_the_twins_differ_only_by_the_change(golden_model, plugins):
    """An ablation of a unit nothing reads (h of a unit whose Wout row is 0 and whose h feeds back
    through R, hence everything) — here: a unit clamped to its own value changes nothing."""
    engine = OnnxEngine(golden_model)
    ids = engine.vocab.encode("recipe for roast")
    _, state = engine.forward(np.array([ids]), engine.start(1))
    own = float(state.arrays[1][0, UNIT])  # unit 3's c is the same after every word
    _, err, status, _ = batch(golden_model, plugins, f"recipe for roast\n:clamp c {UNIT} {own:.6f}\n", SHORT)
    assert status == 0, err
    lines = err.split("drawn twice from the same random numbers", 1)[1].splitlines()[1:3]
    assert lines[0].split("│")[1] == lines[1].split("│")[1]


def test_patching_a_state_onto_itself_changes_nothing(random_model, plugins):
    script = 'recipe for roast chicken |\n:patch 5 "recipe for roast chicken |"\n'
    _, err, status, session = batch(random_model, plugins, script, SHORT)
    assert status == 0, err
    table = err.split("next word after", 1)[1].split("the continuation", 1)[0]
    rows = [line.split("│") for line in table.splitlines() if line[:1].isdigit()]
    assert rows and all(r[1].strip() == r[2].strip() for r in rows)
    twins = err.split("drawn twice from the same random numbers", 1)[1].splitlines()[1:3]
    assert twins[0].split("│")[1] == twins[1].split("│")[1]


def test_patching_another_prompt_reads_on_from_its_state(random_model, plugins):
    from recipe_repl.generate.interventions import patched_resume

    engine = OnnxEngine(random_model)
    ids = engine.vocab.encode("recipe for roast chicken |")
    other = engine.vocab.encode("mix salt and pepper .")
    resume = patched_resume(engine, ids, ["x"] * len(ids), other)
    np.testing.assert_allclose(resume.logits, next_logits(engine, other), atol=1e-6)
    assert resume.history == ids
    _, err, status, _ = batch(random_model, plugins, 'recipe for roast chicken |\n:patch 3 "mix salt and pepper ."\n')
    assert status == 0 and "state after “mix salt and pepper.”" in err, err


# --- :vs-ngram -------------------------------------------------------------------------------------------


def test_the_stored_trigram_is_the_one_eval_fits():
    rng = np.random.default_rng(0)
    V = 40
    seqs = [list(rng.integers(0, V, rng.integers(1, 40))) for _ in range(300)]
    fitted = KneserNey3(V).fit(seqs)
    stored = ngram.decode(ngram.encode(*ngram.count_trigrams(seqs, V), V, "x"), V, "m.onnx")
    for seq in [list(rng.integers(0, V, 30)) for _ in range(5)] + seqs[:3]:
        padded = [-1, -1, *seq]
        want = [np.log(fitted.distribution(padded[i - 2], padded[i - 1])[padded[i]]) for i in range(3, len(padded))]
        np.testing.assert_allclose(stored.logprob(seq), want, rtol=1e-12)
    assert (stored.D1, stored.D2, stored.D3) == (fitted.D1, fitted.D2, fitted.D3)


@pytest.mark.parametrize("change, message", [
    (lambda m: m | {"vocab_size": 7}, "vocabulary this version does not read"),
    (lambda m: m | {"xz_base64": "not base64!"}, "unreadable"),
    (lambda m: m | {"trigrams": m["trigrams"] + 1}, "do not fill their columns"),
    (lambda m: m | {"trigrams": 10**12}, "implausible sizes"),
])
def test_malformed_counts_are_one_model_error(change, message):
    value = json.loads(ngram.encode(*ngram.count_trigrams([[1, 2, 3, 0]], 5), 5, "x"))
    with pytest.raises(ModelError, match=message):
        ngram.decode(json.dumps(change(value)), 5, "m.onnx")


def test_vs_ngram_colours_the_difference_and_lists_wins_and_losses(counted_model, plugins, random_model):
    _, err, status, session = batch(counted_model, plugins, "recipe for roast chicken |\n:vs-ngram\n")
    assert status == 0, err
    sample = session.last_samples[0]
    vocab = session.engine.vocab
    ids = vocab.encode("recipe for roast chicken |") + sample.token_ids + ([PAD_ID] if sample.stop_prob else [])
    logits, _ = session.engine.forward(np.array([ids[:-1]]), session.engine.start(1))
    lstm = log_softmax(logits[0])[np.arange(len(ids) - 1), ids[1:]]
    stored = ngram.decode(OnnxEngine(counted_model).session.get_modelmeta().custom_metadata_map[contract.META_NGRAM],
                          len(vocab), "x")
    delta = lstm - stored.logprob(ids)
    best = int(np.argmax(delta))
    wins = err.split("where the LSTM wins most", 1)[1].splitlines()[2]
    assert wins.split()[0] == str(best + 2)
    assert f"perplexity {np.exp(-lstm.mean()):,.2f} (LSTM) vs {np.exp(-stored.logprob(ids).mean()):,.2f}" in err
    _, err, status, _ = batch(random_model, plugins, "recipe for roast\n:vs-ngram\n")
    assert status == 1 and "carries no 3-gram counts" in err and "ngram_counts" in err


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line, message", [
    (":saliency 1", "word 1 has no prediction"),
    (":saliency x", "takes a word number"),
    (":saliency 2 3", "too many arguments"),
    (":saliency 999", "choose 2 to"),
    (":gates 99", "no unit 99: this model's LSTM has 16 units, numbered 0 to 15 — e.g. :gates 15"),
    (":gates q 3", "too many arguments"),
    (":gates f x", "a unit is a number, not 'x'"),
    (":units-for", "which word?"),
    (":units-for zzzz", "'zzzz' is not in the vocabulary"),
    (":units-for salt pepper", "WORD, or WORD at N"),
    (":units-for salt at 1", "choose 2 to"),
    (":vs-ngram now", "no arguments expected"),
    (":ablate", None),
    (":ablate h", "which units?"),
    (":ablate h 16", "no unit 16"),
    (":ablate c 2 from 0", "from takes a word number from 1"),
    (":ablate off now", "nothing expected after off"),
    (":clamp 3 1.0", "h or c, one unit and a value"),
    (":clamp c 3 inf", "must be a finite number"),
    (":clamp h 3 2", "a unit of h can be clamped to −1 … 1, not 2"),
    (":clamp c 3 x", "the value must be a number"),
    (":patch 3", "a word number and a prompt"),
    (":patch 99 \"roast\"", "the last sample has"),
    (':patch 2 ""', "an empty prompt"),
])
def test_bad_arguments_give_one_line_and_change_nothing(random_model, plugins, line, message):
    _, err, status, session = batch(random_model, plugins, f"recipe for roast\n:temp 0.7\n{line}\n")
    errors = [e for e in err.splitlines() if e.startswith("line 3:")]
    if message is None:  # a question, not an error
        assert status == 0 and "no unit held" in err
    else:
        assert status == 1 and len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert session.settings.temperature == 0.7 and isinstance(session.engine, OnnxEngine)
    assert [s.prompt for s in session.last_samples] == ["recipe for roast"]


def test_no_sample_yet(random_model, plugins):
    _, err, status, session = batch(random_model, plugins, ":saliency\n:gates 3\n:units-for salt\n:patch 2 \"x\"\n")
    assert status == 1
    for n, name in enumerate(["saliency", "gates 3", "units-for", "patch"], start=1):
        assert f"line {n}: error: no sample yet: type a prompt first, then :{name.split()[0]}" in err


def test_a_stateless_model_says_the_views_need_a_stateful_one(plugins, tmp_path):
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps(WORDS), encoding="utf-8")
    model = build_random_lstm(tmp_path / "lecture.onnx", WORDS, stateless=True)
    lines = ["roast", ":saliency", ":gates 1", ":gates", ":units-for salt", ":ablate h 1", ":clamp c 1 0.5",
             ":patch 1 \"salt\""]
    _, err, status, _ = batch(model, plugins, "\n".join(lines) + "\n", vocab=vocab)
    errors = err.splitlines()
    assert status == 1 and len(errors) == len(lines) - 1, err
    assert all("the views inside the LSTM need a stateful model" in e and "lecture.onnx is stateless" in e
               for e in errors)


def test_with_a_seed_the_unchanged_twin_is_the_last_sample(golden_model, plugins):
    _, err, status, session = batch(golden_model, plugins, "recipe for roast\n:ablate c 0\n", SHORT)
    assert status == 0, err
    before = err.split("drawn twice from the same random numbers", 1)[1].splitlines()[1]
    _, _, _, plain = batch(golden_model, plugins, "recipe for roast\n", SHORT)
    assert before.split("│")[1].strip().startswith(plain.last_samples[0].continuation)


def test_the_title_units_example_runs(random_model, capsys, monkeypatch):
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "examples" / "title_units.py"
    spec = importlib.util.spec_from_file_location("title_units", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["title_units.py", "--model", str(random_model), "--a", "recipe for roast |",
                                      "--b", "recipe for chicken |", "--top", "3"])
    assert module.main() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("JS divergence between the tables") and len(out) == 4
    assert all(line.strip().startswith(":ablate c ") for line in out[1:])


def test_the_views_in_the_repl(random_model, plugins):
    from tests.helpers import lines, run_script

    run = run_script(random_model, plugins, lines(":max 10", "recipe for roast", ":saliency", ":gates o 3",
                                                  ":units-for salt", ":ablate h 2", "recipe for chicken",
                                                  ":ablate off", ":patch 2 \"mix salt\""))
    assert run.status == 0 and "Traceback" not in run.out
    for title in ("which words made word", "unit 3's gates at each word", "units that raise the logit of “salt”",
                  "held: h 2 = 0", "h 2 = 0 released", "state after “mix salt”"):
        assert title in run.out
    assert isinstance(run.session.engine, OnnxEngine)


def test_after_score_the_views_read_the_scored_text(counted_model, plugins):
    script = ":score recipe for roast chicken | mix salt and pepper .\n:saliency 3\n:saliency -1\n:gates 2\n" \
             ":units-for salt at 7\n:vs-ngram\n:patch 5 \"recipe for roast chicken |\"\n"
    _, err, status, session = batch(counted_model, plugins, script)
    assert status == 0, err
    assert "which words made word 3 “roast” likely in the scored text" in err
    assert "which words made word 11 “⏹” likely in the scored text" in err  # the stop token is the last word
    assert "unit 2's gates at each word of the scored text" in err
    assert "units that raise the logit of “salt” before word 7 of the scored text" in err
    assert "at each word of the scored text" in err


def test_the_readme_findings_script_runs_on_the_shipped_model(plugins):
    """examples/inside_the_lstm.txt (the README's findings): every line works on the shipped model, and
    the weights the views read reproduce what ONNX Runtime computes (:vs-ngram may find no counts in a
    file exported before they were stored)."""
    from recipe_repl.models import DEFAULT_MODEL

    script = (Path(__file__).resolve().parents[1] / "examples" / "inside_the_lstm.txt").read_text(encoding="utf-8")
    _, err, _, session = batch(DEFAULT_MODEL, plugins, script, Settings(seed=1))
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert all("carries no 3-gram counts" in e for e in errors), errors
    for title in ("which words made word 16 “cup” likely", "units that raise the logit of “cup”",
                  "unit 190's gates", "forget gates over", "c 116 = 0", "state after “recipe for chocolate cake |”"):
        assert title in err
