"""Every number says what it measures (issue 20 §1, §3): the model's probability beside the sampling one,
seeds that repeat, commands without side effects, the stop token in :score, unknown words named once."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.generate.scoring import score_text
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views.render import percent
from tests.helpers import cli, lines, run_script


def flat(text: str) -> str:
    return " ".join(text.split())


def batch(model: Path, plugins, text: str, settings: Settings | None = None, batch_size: int = 32,
          json_lines: bool = True) -> tuple[str, str, int, Session]:
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err, json_lines=json_lines)
    session = Session(plugins, frontend, ModelSpec(model), settings or Settings(seed=1, max_tokens=8),
                      batch_size=batch_size)
    status = BatchRunner(session, frontend).run(text.splitlines())
    return out.getvalue(), err.getvalue(), status, session


def ort_softmax(model: Path, ids: list[int]) -> np.ndarray:
    """The model's next-word distribution after every position, straight from ONNX Runtime (float64 softmax)."""
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feed = {}
    for inp in sess.get_inputs():
        if inp.name == "tokens":
            feed[inp.name] = np.array([ids], dtype=np.int32)
        else:
            feed[inp.name] = np.zeros([1, *inp.shape[1:]], dtype=np.float32)
    logits = sess.run(["logits"], feed)[0][0].astype(np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- §1: the model's probability beside the sampling one ----------------------------------------------------


def test_model_probs_are_a_softmax_of_the_logits_computed_with_onnx_runtime(random_model, plugins):
    out, err, status, session = batch(random_model, plugins, ":temp 0.6\n:topk 4\n:n 2\nrecipe for roast\nmix salt\n",
                                      Settings(seed=5, max_tokens=10))
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(records) == 4
    vocab = session.engine.vocab
    for r in records:
        prompt = [vocab.id_of(w) for w in r["prompt_tokens"]]
        chosen = r["token_ids"] + ([0] if r["stop_reason"] == "stop token" else [])
        probs = ort_softmax(random_model, prompt + r["token_ids"])
        want = [probs[len(prompt) - 1 + k, t] for k, t in enumerate(chosen)]
        assert r["model_probs"] == pytest.approx(want, rel=1e-5)
        assert len(r["model_probs"]) == len(r["token_probs"])
        assert r["model_logprob_sum"] == pytest.approx(sum(math.log(p) for p in want), rel=1e-5)
        assert r["model_perplexity"] == pytest.approx(math.exp(-r["model_logprob_sum"] / len(want)), rel=1e-5)
        # at T = 0.6 with top-k 4 the words were drawn from a sharper distribution than the model's
        assert r["perplexity"] < r["model_perplexity"]


def test_default_settings_need_no_second_computation(random_model, plugins):
    out, _, _, _ = batch(random_model, plugins, "recipe for roast\n", Settings(seed=2, max_tokens=6))
    [r] = [json.loads(line) for line in out.splitlines()]
    assert r["model_probs"] == r["token_probs"]  # T = 1, no processors: the model's distribution is drawn from
    plain, _, _, session = batch(random_model, plugins, ":temp 0.5\nrecipe for roast\n", json_lines=False)
    assert session.last_samples[0].model_probs is None  # plain-text output shows none: none computed


def test_the_greedy_texts_model_perplexity_is_beam_1s_and_scores(random_model, plugins):
    # greedy with a repetition penalty, from a one-word prompt, ends on the stop token after 17 words
    run = run_script(random_model, plugins, lines(":temp 0", ":repeat 1.3", ":max 200", "chicken", ":beam 1", "chicken"))
    entries = [e for e in run.session.transcript if e.kind == "prompt"]
    greedy, beam = entries[0].samples[0], entries[1].samples[0]
    assert greedy["stop_reason"] == "stop token" and greedy["token_ids"] == beam["token_ids"]
    assert greedy["perplexity"] == pytest.approx(1.0)  # what T = 0 drew from: all mass on the top word
    assert greedy["model_perplexity"] == pytest.approx(beam["model_perplexity"], rel=1e-6)
    scored = score_text(run.session.engine, greedy["text"], 10_000)  # every word after the first, and ⏹
    assert scored.perplexity == pytest.approx(greedy["model_perplexity"], rel=1e-5)
    result = cli(["--no-plugins", "score", "-", "--model", str(random_model), "--json"], greedy["text"] + "\n")
    assert json.loads(result.stdout)["perplexity"] == pytest.approx(greedy["model_perplexity"], rel=1e-5)
    out = flat(run.out)
    ppl = greedy["model_perplexity"]
    assert f"perplexity {ppl:,.2f} (model) · 1.00 at T = 0 (greedy), repetition penalty 1.3 · stop token" in out


def test_the_footer_names_one_perplexity_when_the_settings_change_nothing(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 5", "recipe for roast"))
    sample = run.session.last_samples[0]
    assert sample.model_perplexity == pytest.approx(sample.perplexity, rel=1e-6)
    assert f"perplexity {sample.model_perplexity:,.2f} · " in run.out and "(model)" not in run.out


def test_why_on_a_beam_says_chosen_and_shows_both_columns(random_model, plugins):
    run = run_script(random_model, plugins, lines(":beam 2", ":unk off", ":max 5", "recipe for roast", ":why 5"))
    out = flat(run.out)
    assert "◀ chosen" in out and "◀ drawn" not in out
    assert "(word 5 of" in out and ": chosen at" in out
    assert "model sampling" in out  # [UNK] banned: the search's distribution is not the model's


def test_pick_shows_both_columns_and_answers_by_the_shown_row(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 0", ":max 2", ":pick 4", "recipe for", "2", "s"))
    out = flat(run.out)
    assert "model sampling" in out and "100%" in out
    picked = run.session.last_samples[0]
    # row 2 at T = 0 is the model's runner-up (0% to draw), and `2` picks that word
    table = run.out.split("next word after")[1]  # the first table: the one "2" answered
    second = re.search(r"^\s*2\s+(\S+)", table, flags=re.M).group(1)
    assert picked.words[0] == second


def test_heat_colours_by_the_model_unless_told_sampling(random_model, plugins):
    run = run_script(random_model, plugins, lines(":heat on", ":raw on", ":temp 0.3", ":max 4", "recipe for roast",
                                                  ":heat sampling", "recipe for roast"))
    first, second = [e for e in run.session.transcript if e.kind == "prompt"][:2]
    model_marks = [f"({p:.2f})" for p in first.samples[0]["model_probs"][:len(first.samples[0]["tokens"])]]
    drawn_marks = [f"({p:.2f})" for p in second.samples[0]["token_probs"][:len(second.samples[0]["tokens"])]]
    halves = run.out.split("heat: ")
    assert all(m in flat(halves[1]) for m in model_marks)
    assert all(m in flat(halves[2]) for m in drawn_marks)


# --- §3: seeds that repeat, commands without side effects ------------------------------------------------


def test_seed_then_the_same_prompt_twice_gives_the_same_text(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 7", ":temp 1.2", ":max 12", "recipe for roast", "mix salt",
                                                  "recipe for roast", ":n 2", "recipe for roast"))
    texts = [e.samples for e in run.session.transcript if e.kind == "prompt"]
    assert texts[0][0]["text"] == texts[2][0]["text"] == texts[3][0]["text"]
    assert texts[3][1]["text"] != texts[3][0]["text"]  # the second sample of a prompt draws on its own
    out, _, _, _ = batch(random_model, plugins, ":seed 7\n:temp 1.2\n:max 12\nrecipe for roast\nmix salt\n"
                                                "recipe for roast\n", json_lines=False)
    lines_ = out.splitlines()
    assert lines_[0] == lines_[2] == texts[0][0]["text"]  # batch mode, any line, the same text as the REPL's
    for size in (1, 2):
        again, _, _, _ = batch(random_model, plugins, ":seed 7\n:temp 1.2\n:max 12\nrecipe for roast\nmix salt\n"
                                                      "recipe for roast\n", batch_size=size, json_lines=False)
        assert again == out
    gen = cli(["--no-plugins", "generate", "recipe for roast", "--model", str(random_model), "--seed", "7", "-t",
               "1.2", "--max-tokens", "12"])
    assert gen.stdout.decode().strip() == texts[0][0]["text"]


def test_help_seed_says_what_is_reproducible(random_model, plugins):
    run = run_script(random_model, plugins, lines(":help seed"))
    out = flat(run.out)
    assert "typed twice in this session" in out and "in batch mode" in out and "Not the same" in out


def test_probs_every_does_not_change_compares_rows(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 1", "recipe for roast", ":probs every 3", ":compare 1.0 0.5",
                                                  ":compare 1.0 0.5 rows 2", ":compare 1.0 rows x"))
    tables = run.out.split("next word after")
    rows = [len(re.findall(r"^\s*\d+ │", t, flags=re.M)) for t in tables[-2:]]
    assert rows[0] > 3 and rows[1] == 2
    assert "the number of rows must be a whole number" in run.out
    assert run.session.settings.probs_n == 3


def test_score_names_the_stop_token_among_the_least_likely_and_its_weight(random_model, plugins):
    text = "recipe for roast chicken with"  # the model does not expect the recipe to end after "with"
    scored = score_text(OnnxEngineFor(random_model), text, 10_000)
    run = run_script(random_model, plugins, lines(f":score {text}"))
    out = flat(run.out)
    median = float(np.median(scored.predictions))
    table = run.out.split("least likely words")[1].split("perplexity")[0]
    shown = re.findall(r"^\s*(\d+)\s+(.+?)\s+(<?[\d.]+%)", table, flags=re.M)
    assert shown and all(float(p.strip("<%")) / 100 <= median for _, _, p in shown)  # below the median only
    assert ("6", "⏹ [end]", percent(scored.stop_prob)) in shown  # ⏹ is word 6 of this text, and unlikely here
    assert scored.stop_prob < median
    assert (f"the stop token ({percent(scored.stop_prob)}) weighs in the perplexity: {scored.perplexity:,.2f} with it, "
            f"{scored.perplexity_without_stop:,.2f} without") in out


def OnnxEngineFor(model: Path):  # noqa: N802 - reads as a constructor
    from recipe_repl.model.engine import OnnxEngine

    return OnnxEngine(model)


def test_an_unknown_prompt_word_is_named_once(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 2", "recipe for gazpachoo gazpachoo soup"))
    assert run.out.count("'gazpachoo' is not in the vocabulary: the model reads [UNK]") == 1
    assert run.out.count("'soup' is not in the vocabulary") == 1
    _, err, status, _ = batch(random_model, plugins, "recipe for gazpachoo\nroast\n")
    assert status == 0 and err.splitlines() == ["line 1: warning: 'gazpachoo' is not in the vocabulary: the model "
                                                "reads [UNK]"]
