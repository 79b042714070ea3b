"""Why this word? Per-word probabilities, :heat, :why, :back, :branch, :score, beam search and :best."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from rich.text import Text

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.generate.beam import beam_search, mean_logprob
from recipe_repl.generate.inspection import tables_before
from recipe_repl.generate.loop import Request, Sample, generate
from recipe_repl.generate.sampling import Sampler
from recipe_repl.generate.scoring import corpus_perplexity, score_text
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.session.session import ModelSpec, Session, sample_record
from recipe_repl.views.heat import band, marked_text
from recipe_repl.views.render import HEAT_STYLES, heat_text, percent
from tests.helpers import lines, run_script


def batch(model: Path, plugins, text: str, settings: Settings | None = None) -> tuple[str, str, int, Session]:
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err, json_lines=True)
    session = Session(plugins, frontend, ModelSpec(model), settings or Settings(seed=1, max_tokens=8))
    status = BatchRunner(session, frontend).run(text.splitlines())
    return out.getvalue(), err.getvalue(), status, session


# --- probabilities of every word ----------------------------------------------------------------------


def test_each_words_probability_is_the_samplers_distribution_at_that_step(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 1.3", ":topk 8", ":max 12", "recipe for roast"))
    sample, text = run.session.last_samples[0], run.session.last_text
    engine, specs = run.session.engine, run.session.plugins.processor_specs()
    assert len(sample.probs) == len(sample.token_ids) > 0
    start = len(sample.prompt_words)
    for k in range(start, len(text)):  # every choice, the stop token included when it ended the sample
        tables = tables_before(engine, specs, text, k, sample.settings)
        token = text.words[k].id
        assert sample.token_probs[k - start] == pytest.approx(float(tables.sampling[token]), rel=1e-6)
        assert (tables.sampling > 0).sum() <= 8  # the same processors (top-k) as when it was drawn
        # the model's own probability: softmax of the raw logits, as recorded by the loop
        assert sample.model_token_probs[k - start] == pytest.approx(float(tables.model[token]), rel=1e-5)


def test_json_records_carry_token_probs_logprob_and_perplexity(random_model, plugins):
    out, err, status, _ = batch(random_model, plugins, "recipe for roast\nchicken\n")
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(records) == 2
    for r in records:
        probs = r["token_probs"]
        extra = 1 if r["stop_reason"] == "stop token" else 0
        assert len(probs) == len(r["tokens"]) + extra and all(0 < p <= 1 for p in probs)
        assert r["logprob_sum"] == pytest.approx(sum(math.log(p) for p in probs), abs=1e-4)
        assert r["perplexity"] == pytest.approx(math.exp(-r["logprob_sum"] / len(probs)), rel=1e-4)
        assert r["method"] == "sample" and "top_alternatives" not in r


def test_top_alternatives_are_the_most_likely_words_at_each_step(random_model, plugins):
    engine = OnnxEngine(random_model)
    for settings in (Settings(seed=3, max_tokens=6, temperature=0.9), Settings(max_tokens=6, temperature=0)):
        [s] = list(generate(engine, [Request("recipe for")], settings, plugins.processor_specs(), top_alternatives=4))
        assert len(s.alternatives) == len(s.token_probs)
        sampler = Sampler(settings, plugins.processor_specs(), engine.vocab)
        ids = engine.vocab.encode("recipe for")
        for k, step in enumerate(s.alternatives):
            history = ids + s.token_ids[:k]
            out, _ = engine.forward(np.array([history]), engine.start(1))
            dist = sampler.distribution(out[:, -1, :], [history])[0]
            model = softmax(out[0, -1])
            # ranked by the sampling distribution, ties (at T = 0, all but the chosen word) by the model's
            want = sorted(range(len(dist)), key=lambda i: (-float(dist[i]), -model[i]))[:4]
            assert [i for i, _, _, _ in step] == want
            assert [p for _, _, p, _ in step] == pytest.approx([float(dist[i]) for i in want], rel=1e-6)
            assert [m for _, _, _, m in step] == pytest.approx([model[i] for i in want], rel=1e-5)
            assert all(w == engine.vocab.words[i] for i, w, _, _ in step)
        record = sample_record(s)
        i, w, p, m = s.alternatives[0][0]
        assert record["top_alternatives"][0][0] == {"word": w, "id": i, "prob": float(f"{p:.6g}"),
                                                    "model_prob": float(f"{m:.6g}")}
        if settings.temperature == 0:  # the runners-up are the model's, not "clip 0.0, clearer 0.0"
            assert all(m > 0 for _, _, _, m in s.alternatives[0]) and s.alternatives[0][1][2] == 0


def softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def test_cli_top_alternatives_flag(random_model, capsys):
    from recipe_repl.frontends.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--no-plugins", "generate", "recipe for", "--model", str(random_model), "--seed", "2", "--max-tokens", "3", "--json",
              "--top-alternatives", "2"])
    assert exit_.value.code == 0
    record = json.loads(capsys.readouterr().out)
    assert all(len(step) == 2 for step in record["top_alternatives"]) and record["top_alternatives"]


def test_footer_shows_the_perplexity(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 5", "recipe for roast"))
    sample = run.session.last_samples[0]
    assert f"perplexity {sample.perplexity:,.2f}" in run.out


def _ansi(style: str) -> str:
    """The escape sequence a colour terminal gets for `style`."""
    buf = io.StringIO()
    Console(file=buf, color_system="truecolor", force_terminal=True).print(Text("w", style=style), end="")
    return buf.getvalue().split("w", 1)[0]


def test_heat_colours_words_by_band_and_raw_shows_numbers(random_model, plugins):
    from recipe_repl.frontends.repl import ReplFrontend

    def generate_in_repl(*commands: str) -> tuple[str, Sample]:
        """The REPL's output for one prompt after `commands` (what they print themselves left out)."""
        buf = io.StringIO()
        frontend = ReplFrontend(Console(file=buf, width=200, color_system="truecolor", highlight=False))
        session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=4, max_tokens=10, temperature=1.5))
        for command in commands:
            session.handle_line(command)
        before = len(buf.getvalue())
        [sample] = session.prompt("recipe for roast")
        return buf.getvalue()[before:], sample

    hot, sample = generate_in_repl(":heat on")
    plain, same = generate_in_repl()
    assert same.token_ids == sample.token_ids
    model = sample.model_probs  # `:heat on` colours by the model's own probability (`:heat sampling`: as drawn)
    assert model is not None and len(model) == len(sample.probs)
    bands = {band(p) for p in model if HEAT_STYLES[band(p)]}  # the top band has no colour
    assert len(bands) >= 2, model
    for b in bands:  # each band's colour paints the words with heat on, and only then
        assert _ansi(HEAT_STYLES[b]) in hot and _ansi(HEAT_STYLES[b]) not in plain, b
    painted = heat_text(sample.prompt_words + sample.words, [None] * len(sample.prompt_words) + sample.probs)
    assert painted.plain == sample.text
    raw, _ = generate_in_repl(":heat on", ":raw on")
    assert f"({model[0]:.2f})" in raw  # each word's model probability after it
    assert heat_text(["salt", "pepper"], [None, 0.4242], raw=True).plain == "salt pepper(0.42)"


def test_heat_needs_no_colour_to_mark_unlikely_words() -> None:
    buf = io.StringIO()
    Console(file=buf, width=80, color_system="standard", no_color=True, force_terminal=True).print(
        heat_text(["a", "b", "c"], [None, 0.001, 0.9]))
    out = buf.getvalue()
    assert "\x1b[4m" in out or ";4m" in out  # the least likely band stays underlined without colours


def test_heat_command_and_legend(random_model, plugins):
    run = run_script(random_model, plugins, lines(":heat on", ":max 3", "roast", ":heat sampling", ":heat off",
                                                  ":heat maybe"))
    assert "heat: ■ <1%" in run.out and "≥70%" in run.out and "heat off" in run.out
    out = " ".join(run.out.split())
    assert "(the model's own probability of each word: temperature 1, no processors)" in out
    assert "(the probability each word was drawn with, after the settings)" in out
    assert "usage: :heat on|sampling|off" in out
    out, err, status, _ = batch(random_model, plugins, ":heat on\n")
    assert status == 1 and "needs an interactive terminal" in err


def test_save_markdown_keeps_heat_marks(random_model, plugins, tmp_path):
    target = tmp_path / "s.md"
    run = run_script(random_model, plugins, lines(":heat on", ":max 6", ":temp 2", "recipe for roast", f":save {target}"))
    text = target.read_text()
    sample = run.session.last_samples[0]
    assert "heat: ¹ <1%" in text and "the model's own probability" in text
    assert marked_text(sample.prompt_words + sample.words, [None] * len(sample.prompt_words) + sample.model_probs) in text


def test_marked_text_marks_each_band() -> None:
    words = ["recipe", "for", "salt", "pepper", "oil", "rice", "."]
    text = marked_text(words, [None, None, 0.005, 0.05, 0.2, 0.5, 0.9])
    assert text == "Recipe for salt¹ pepper² oil³ rice⁴."


# --- looking back ----------------------------------------------------------------------------------------


def test_why_shows_the_table_a_word_was_drawn_from(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 6", ":temp 1.5", "recipe for roast", ":why 5", ":why",
                                                  ":why -1", ":why 99", ":why x", ":why 1", ":why 2"))
    text = run.session.last_text
    n = len(text)
    sample = run.session.last_samples[0]
    assert n == 3 + len(sample.token_probs)  # the prompt's words, the generated ones, ⏹ when it ended the sample
    assert "(word 5 of" in run.out and "◀ drawn" in run.out
    model = text.model_probs(run.session.engine)
    least = min(range(3, n), key=lambda k: model[k]) + 1
    assert f"(word {least} of {n}: drawn at" in run.out
    assert f"(word {n} of {n}" in run.out
    assert f"choose 2 to {n}, or -1 to -{n - 1} from the end" in run.out
    assert "takes a word number" in run.out
    assert "word 1 has no prediction: nothing precedes it" in run.out
    assert "(word 2 of" in run.out and "◀ typed" in run.out  # a prompt word: the table the model read it from


def test_why_and_back_need_a_sample(random_model, plugins):
    run = run_script(random_model, plugins, lines(":why", ":back", ":branch 1 salt"))
    assert run.out.count("no sample yet") == 3


def test_back_then_continue_is_reproducible_with_a_seed(random_model, plugins):
    script = lines(":seed 11", ":max 10", ":temp 1.4", "recipe for roast", ":back 4", ":continue", ":back 2",
                   ":continue")
    a = run_script(random_model, plugins, script)
    b = run_script(random_model, plugins, script)
    assert a.session.last_samples[0].text == b.session.last_samples[0].text
    assert "back 4 words" in a.out and "back 2 words" in a.out


def test_back_keeps_the_words_and_the_state(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 5", ":max 10", ":temp 1.2", "recipe for roast", ":back 3"))
    rewound = run.session.last_samples[0]
    full = [t for e in run.session.transcript if e.kind == "prompt" for t in [e]][0].samples[0]
    whole = full["token_ids"] + ([0] if full["stop_reason"] == "stop token" else [])  # ⏹ is a word too
    assert rewound.token_ids == whole[:-3] and rewound.resume is not None
    assert run.session.last_text.ids() == [2, 3, 4, *whole[:-3]]
    engine = run.session.engine
    ids = [engine.vocab.id_of(w) for w in rewound.prompt_words] + rewound.token_ids
    out, state = engine.forward(np.array([ids]), engine.start(1))
    np.testing.assert_allclose(rewound.resume.logits, out[0, -1], atol=1e-5)
    for a, b in zip(rewound.resume.state.arrays, state.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_back_bad_numbers_change_nothing(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 4", "recipe for roast", ":back 99", ":back zero", ":back 0"))
    sample = run.session.last_samples[0]
    words = len(run.session.last_text)
    assert run.out.count(f"the last text has {words} words: go back 1 to {words - 1}") == 2
    assert "takes a number of words" in run.out
    assert len(run.session.last_text) == words and run.session.last_samples[0] is sample


def test_branch_forces_the_word_then_continues(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 2", ":max 6", "recipe for roast", ":branch 5 salt"))
    branched = run.session.last_samples[0]
    original = [e for e in run.session.transcript if e.kind == "prompt"][0].samples[0]
    kept = original["tokens"][:1]
    assert branched.prompt_words == ["recipe", "for", "roast", *kept, "salt"]
    assert run.session.last_text.tokens()[:5] == ["recipe", "for", "roast", *kept, "salt"]
    assert "branch at word 5: word 5 “salt”" in run.out and "(the model's probabilities) instead of" in run.out
    assert "▶salt" in run.out.replace("\n", " ") and "(▶ word 5: the branch point)" in run.out
    run = run_script(random_model, plugins, lines(":max 3", "roast", ":branch 9 salt", ":branch 1"))
    assert "choose 2 to" in run.out and "usage: :branch N WORDS…" in run.out


def test_branch_reports_every_written_word_and_unknown_ones(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 2", ":max 4", "recipe for roast", ":branch 4 salt quokka pepper"))
    text = run.session.last_text
    model = text.model_probs(run.session.engine)
    assert text.tokens()[3:6] == ["salt", "[UNK]", "pepper"]
    said = " ".join(run.out.split())
    for j, word in enumerate(["salt", "[UNK]", "pepper"]):
        assert f"word {4 + j} “{word}” {percent(model[3 + j])}" in said
    assert run.out.count("'quokka' is not in the vocabulary: the model reads [UNK]") == 1
    # numbering goes on over the whole new text: word 5 is now the written [UNK]
    run2 = run_script(random_model, plugins, lines(":seed 2", ":max 4", "recipe for roast", ":branch 4 salt quokka pepper",
                                                   ":why 5"))
    assert "(word 5 of" in run2.out and "written" in run2.out.split("(word 5 of")[1][:80]


# --- scoring a text -----------------------------------------------------------------------------------------


def test_score_shows_probabilities_and_perplexity(random_model, plugins):
    run = run_script(random_model, plugins, lines(":score recipe for roast chicken with quokka", ":score"))
    engine = run.session.engine
    scored = score_text(engine, "recipe for roast chicken with quokka", 10_000)
    assert f"perplexity {scored.perplexity:,.2f} over {len(scored.predictions)} predictions" in run.out
    assert scored.words[-1] == "[UNK]" and scored.unknown == 1 and "1 unknown word" in run.out
    assert "least likely words" in run.out and "usage: :score TEXT" in run.out
    # each probability is the model's own (temperature 1, no processors) next-word probability
    ids = scored.ids
    out, _ = engine.forward(np.array([ids]), engine.start(1))
    logits = out[0].astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert scored.probs[1:] == pytest.approx([probs[k, ids[k + 1]] for k in range(len(ids) - 1)], rel=1e-6)
    assert scored.stop_prob == pytest.approx(probs[-1, 0], rel=1e-6)


def test_score_cli_and_json(random_model, tmp_path, capsys):
    from recipe_repl.frontends.cli import main

    texts = tmp_path / "texts.txt"
    texts.write_text("recipe for roast chicken\n\nmix salt and pepper\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--no-plugins", "score", str(texts), "--model", str(random_model), "--json"])
    assert exit_.value.code == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    engine = OnnxEngine(random_model)
    want = [score_text(engine, t, 10_000) for t in ("recipe for roast chicken", "mix salt and pepper")]
    assert [r["perplexity"] for r in records] == pytest.approx([w.perplexity for w in want], rel=1e-9)
    assert f"perplexity {corpus_perplexity(want):,.2f}" in captured.err
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(tmp_path / "missing.txt"), "--model", str(random_model)])
    assert exit_.value.code == 2 and "cannot read" in capsys.readouterr().err


# --- search instead of sampling --------------------------------------------------------------------------


def test_beam_of_width_one_is_greedy(random_model, plugins):
    engine = OnnxEngine(random_model)
    for prompt in ("recipe for roast", "mix salt", "chicken"):
        for settings in (Settings(max_tokens=25), Settings(max_tokens=25, allow_unk=False, repetition_penalty=1.3)):
            greedy = list(generate(engine, [Request(prompt)], settings.replace(temperature=0),
                                   plugins.processor_specs()))[0]
            [beam] = beam_search(engine, prompt, settings, plugins.processor_specs(), width=1)
            assert beam.token_ids == greedy.token_ids and beam.stop_reason == greedy.stop_reason


def test_beams_are_ranked_and_scored(random_model, plugins):
    engine = OnnxEngine(random_model)
    beams = beam_search(engine, "recipe for roast", Settings(max_tokens=12), plugins.processor_specs(), width=4)
    assert len(beams) == 4 and all(b.method == "beam" for b in beams)
    means = [mean_logprob(b) for b in beams]
    assert means == sorted(means, reverse=True)
    assert len({tuple(b.token_ids) for b in beams}) == 4
    for b in beams:  # each beam's probabilities are the model's at temperature 1 along its own path
        history = engine.vocab.encode("recipe for roast")
        for k, token in enumerate(b.token_ids):
            out, _ = engine.forward(np.array([history]), engine.start(1))
            logits = out[0, -1].astype(np.float64)
            p = np.exp(logits - logits.max())
            assert b.probs[k] == pytest.approx(p[token] / p.sum(), rel=1e-5)
            history = history + [token]
    sums = beam_search(engine, "recipe for roast", Settings(max_tokens=12), plugins.processor_specs(), width=4,
                       length_penalty=0.0)
    assert [b.logprob_sum for b in sums] == sorted([b.logprob_sum for b in sums], reverse=True)


def test_beam_mode_in_the_repl_batch_and_json(random_model, plugins):
    run = run_script(random_model, plugins, lines(":beam 3", ":max 8", "recipe for roast", ":beam off", ":beam x",
                                                  ":beam 99"))
    assert "beam 1 · mean log p" in run.out and "beam 3 · mean log p" in run.out
    assert "beam search off" in run.out and "whole number" in run.out and "between 0 (off) and 64" in run.out
    assert run.session.settings.beam == 0
    out, err, status, _ = batch(random_model, plugins, ":beam 2\nrecipe for roast\n:beam off\nroast\n")
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [r["method"] for r in records] == ["beam", "beam", "sample"]
    assert records[0]["beam"] == 2 and records[0]["sample"] == 0 and records[1]["sample"] == 1


def test_generate_beam_flag(random_model, capsys):
    from recipe_repl.frontends.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--no-plugins", "generate", "recipe for roast", "--model", str(random_model), "--beam", "3",
              "--max-tokens", "6", "--json"])
    assert exit_.value.code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 3 and {r["method"] for r in records} == {"beam"}


def test_best_ranks_samples_by_mean_log_probability(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 3", ":max 6", ":temp 1.5", "recipe for roast", ":best 4",
                                                  ":beam 2", ":best 3"))
    assert "ranked by the model's mean log-probability" in run.out
    table = run.out.split("ranked by the model's mean log-probability")[1]
    rows = re.findall(r"^\s*\d+\s*│\s*(\d+)\s*│\s*(-?\d+\.\d+)\s*│\s*([\d,.]+)\s*│\s*(-?\d+\.\d+)", table,
                      flags=re.M)[:4]
    means = [float(m) for _, m, _, _ in rows]
    assert len(means) == 4 and means == sorted(means, reverse=True)
    samples = [e for e in run.session.transcript if e.kind == "prompt"][-1].samples
    for number, model_mean, ppl, sampling_mean in rows:  # the model's column, then the sampling one
        record = samples[int(number) - 1]
        n = len(record["token_probs"])
        assert float(model_mean) == pytest.approx(record["model_logprob_sum"] / n, abs=1e-3)
        assert float(sampling_mean) == pytest.approx(record["logprob_sum"] / n, abs=1e-3)
        assert float(ppl.replace(",", "")) == pytest.approx(record["model_perplexity"], abs=0.01)
    assert ":best ranks samples: turn beam search off first" in run.out


@pytest.mark.slow
def test_score_of_a_file_of_recipes_equals_eval(tmp_path):
    """`recipe-repl score` over the held-out recipes gives the perplexity `recipe-repl eval` reports."""
    from recipe_repl.export.evaluate import evaluate
    from recipe_repl.train.preprocess import load_split

    from recipe_repl.frontends.cli import main
    from tests.tiny import export_tiny_onnx, tiny_config, train_tiny_run

    run = train_tiny_run(tmp_path / "run", seq_len=500)  # longer than every recipe: eval cuts none
    model = export_tiny_onnx(run, tmp_path / "tiny.onnx")
    report = evaluate(model, data=tiny_config().data, ngram=False)
    cfg = tiny_config()
    _, split = load_split(cfg.data, cfg.val_split, cfg.seed)
    texts = tmp_path / "held_out.txt"
    texts.write_text("".join(t.replace("\n", " ") + "\n" for t in split.val))
    engine = OnnxEngine(model)
    scores = [score_text(engine, t, 10_000) for t in split.val]
    assert corpus_perplexity(scores) == pytest.approx(report["lstm"]["perplexity"], rel=1e-5)
    assert sum(len(s.predictions) for s in scores) == report["lstm"]["tokens"]
    from click.testing import CliRunner

    with CliRunner().isolation() as (_, err, _):
        with pytest.raises(SystemExit) as exit_:
            main(["--no-plugins", "score", str(texts), "--model", str(model)])
        assert exit_.value.code == 0
        assert f"perplexity {report['lstm']['perplexity']:,.2f}" in err.getvalue().decode()
