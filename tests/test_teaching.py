"""The teaching commands :probs, :compare and :pick, in the REPL (pipe input) and in batch mode."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from rich.console import Console

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.generate.inspection import sampling_distribution
from recipe_repl.generate.loop import StopReason
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views.render import END_MARKER, percent, prob_table, top_ids
from tests.helpers import lines, run_script


def expected_table(session: Session, prompt: str, settings: Settings, n: int) -> list[tuple[str, str]]:
    """(word, percentage) rows computed straight from the engine and the sampler's chain."""
    vocab = session.engine.vocab
    ids = vocab.encode(prompt)
    out, _ = session.engine.forward(np.array([ids]), session.engine.start(1))
    probs = sampling_distribution(out[0, -1], ids, settings, session.plugins.processor_specs(), vocab)
    return [(vocab.word(i) or END_MARKER, percent(float(probs[i]))) for i in top_ids(probs, n)]


def expected_two_columns(session: Session, prompt: str, settings: Settings, n: int) -> list[tuple[str, str, str]]:
    """(word, model %, sampling %) rows straight from ONNX Runtime: the softmax of the logits beside the chain's."""
    vocab = session.engine.vocab
    ids = vocab.encode(prompt)
    out, _ = session.engine.forward(np.array([ids]), session.engine.start(1))
    logits = out[0, -1].astype(np.float64)
    model = np.exp(logits - logits.max())
    model /= model.sum()
    probs = sampling_distribution(out[0, -1], ids, settings, session.plugins.processor_specs(), vocab)
    rows = sorted(range(len(vocab)), key=lambda i: (-float(probs[i]), -model[i]))[:n]
    return [(vocab.word(i) or END_MARKER, percent(float(model[i])), percent(float(probs[i]))) for i in rows]


def table_rows(out: str) -> list[tuple[str, str]]:
    """(word, percentage) pairs from rendered probability-table rows."""
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+\s+(.+?)\s+(<?[\d.]+%)", line)
        if m:
            rows.append((m.group(1).replace("  ◀ drawn", "").strip(), m.group(2)))
    return rows


def two_column_rows(out: str) -> list[tuple[str, str, str]]:
    """(word, model %, sampling %) from rendered two-column probability-table rows."""
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+\s+(.+?)\s+(<?[\d.]+%)\s+(<?[\d.]+%)", line)
        if m:
            rows.append((m.group(1).replace("  ◀ drawn", "").strip(), m.group(2), m.group(3)))
    return rows


def test_probs_shows_the_samplers_distribution(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 0.7", ":topk 5", ":max 2", "recipe for roast", ":probs 8"))
    table = run.out.split("next word after")[-1]
    rows = two_column_rows(table)
    want = expected_two_columns(run.session, "recipe for roast", run.session.settings, 8)
    assert rows == want and len(rows) == 8
    assert [p for _, _, p in rows[5:]] == ["0%"] * 3  # top-k 5 leaves five words with any probability
    assert "model" in table and "sampling" in table
    assert "model: temperature 1, no processors · sampling (drawn from): temperature 0.7 · top-k 5" in " ".join(table.split())
    assert "█" in run.out


def test_probs_at_temperature_zero_takes_the_runners_up_from_the_model(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 0", ":max 2", "recipe for roast", ":probs 4"))
    rows = two_column_rows(run.out.split("next word after")[-1])
    assert rows == expected_two_columns(run.session, "recipe for roast", run.session.settings, 4)
    assert rows[0][2] == "100%" and [p for _, _, p in rows[1:]] == ["0%"] * 3
    assert all(m != "0%" for _, m, _ in rows)  # the model's own runners-up, not "0.0, 0.0"


def test_probs_default_rows_and_temperature_one(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 1", "chicken", ":probs"))
    rows = table_rows(run.out.split("next word after")[-1])
    assert rows == expected_table(run.session, "chicken", run.session.settings, 5)
    total = sum(float(p.strip("<%")) for _, p in rows)
    assert 0 < total <= 100.5


def test_probs_modes_set_the_setting(random_model, plugins):
    run = run_script(random_model, plugins, lines(":probs every", ":probs first 3", ":probs off", ":probs first"))
    assert "probs = every" in run.out and "probs = off" in run.out
    assert (run.session.settings.probs, run.session.settings.probs_n) == ("first", 3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (":probs", "no prompt yet"),
        (":probs 0", "between 1 and 100"),
        (":probs lots", "whole number, not 'lots'"),
        (":probs every many", "whole number"),
        (":probs 3 4", "usage: :probs"),
        (":compare", "no prompt yet"),
        (":compare hot 0.2", "temperatures must be numbers, not 'hot'"),
        (":compare 1 9", "between 0 and 5"),
        (":compare nan", "between 0 and 5"),
        (":compare 1 2 3 4 5 0.5 0.2", "at most 6"),
        (":pick 1 2", "usage: :pick [N]"),
        (":pick zero", "whole number"),
    ],
)
def test_bad_arguments_get_one_clear_line(random_model, plugins, line, message):
    run = run_script(random_model, plugins, lines(line, ":probs off"))
    errors = [ln for ln in run.out.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "probs = off" in run.out  # the prompt came back


def test_probs_first_and_every_during_generation(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 4", ":probs first", "recipe for roast"))
    assert run.out.count("◀ drawn") == 1 and "step 1: next word after “recipe for roast”" in run.out
    first = run.session.last_samples[0].words[0]
    drawn = [ln for ln in run.out.splitlines() if "◀ drawn" in ln][0]
    assert first in drawn
    run = run_script(random_model, plugins, lines(":max 4", ":probs every 3", "recipe for roast"))
    sample = run.session.last_samples[0]
    steps = len(sample.token_ids) + (sample.stop_reason == StopReason.STOP_TOKEN)
    assert run.out.count("◀ drawn") == steps and f"step {steps}:" in run.out
    assert sample.text in run.out.replace("\n", " ")


def test_compare_puts_temperatures_side_by_side(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 1", "recipe for roast", ":compare 1.0 0.2"))
    table = run.out.split("next word after")[-1]
    assert "T = 1" in table and "T = 0.2" in table
    settings = run.session.settings
    hot = expected_table(run.session, "recipe for roast", settings.replace(temperature=1.0), 5)
    cold = expected_table(run.session, "recipe for roast", settings.replace(temperature=0.2), 5)
    first_row = [ln for ln in table.splitlines() if ln.lstrip().startswith("1 ")][0]
    assert f"{hot[0][0]} {hot[0][1]}" in first_row and f"{cold[0][0]} {cold[0][1]}" in first_row
    assert float(cold[0][1].strip("%")) > float(hot[0][1].strip("%"))  # colder is sharper


def test_compare_defaults_to_the_lectures_pair(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 1", ":topk 3", "roast", ":compare"))
    assert "T = 1" in run.out and "T = 0.2" in run.out and "the T columns also apply top-k 3" in run.out
    assert "model: temperature 1, no processors" in run.out  # top-k applies: no T column is the model's own


def test_pick_by_number_enter_word_unknown_and_stop(random_model, plugins, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keys = lines(":max 1", "recipe for roast", ":max 8", ":pick 4", "1", "", "chicken", "zucchini", "=1", "s",
                 ":max 1", ":continue", ":save x.json", ":save x.md")
    run = run_script(random_model, plugins, keys)
    picked = [e for e in run.session.transcript if e.kind == "prompt"][1].samples[0]
    words = picked["tokens"]
    s = run.session
    top = expected_table(s, "recipe for roast", s.settings, 4)[0][0]
    assert words[0] == top  # "1" picked the most likely word
    assert words[2:] == ["chicken", "[UNK]", "1"]  # typed words, unknown → [UNK], =1 is the word "1"
    assert picked["stop_reason"] == "interrupted"  # s stops; :continue can go on
    assert "'zucchini' is not in the vocabulary: the model reads [UNK]" in run.out
    cont = s.last_samples[0]
    assert cont.stop_reason == StopReason.MAX_TOKENS and len(cont.token_ids) == 1
    assert cont.text.startswith(picked["text"])
    data = json.loads((tmp_path / "x.json").read_text())
    assert [e["text"] for e in data["entries"] if e["kind"] == "prompt"][1] == "recipe for roast"
    assert picked["text"] in (tmp_path / "x.md").read_text()


def test_pick_enter_draws_like_the_sampler(random_model, plugins):
    """Enter at every step, with a seed, gives what the seeded sampler would: the same words twice."""
    from recipe_repl.generate.loop import Request, generate

    keys = lines(":max 6", ":seed 5", ":temp 1.5", "roast", ":pick", "", "", "", "", "", "")
    run = run_script(random_model, plugins, keys)
    picked = run.session.last_samples[0]
    s = run.session
    [sampled] = generate(s.engine, [Request("roast", key=picked.key)], s.settings, s.plugins.processor_specs())
    assert picked.token_ids == sampled.token_ids and picked.stop_reason == sampled.stop_reason
    assert len(picked.token_ids) >= 1


def test_pick_ends_at_the_stop_string(random_model, plugins):
    run = run_script(random_model, plugins, lines(":stop golden", ":max 8", "roast", ":pick", "chicken", "golden"))
    sample = run.session.last_samples[0]
    assert sample.words == ["chicken", "golden"] and sample.stop_reason == StopReason.STOP_STRING
    assert "the stop string “golden” ends the recipe" in run.out


def test_pick_number_out_of_range_asks_again(random_model, plugins):
    run = run_script(random_model, plugins, lines("roast", ":pick 3", "9", "2", "s"))
    assert "choose 1 to 3" in run.out
    assert len(run.session.last_samples[0].token_ids) == 1


def test_pick_without_a_prompt_asks_for_one(random_model, plugins):
    run = run_script(random_model, plugins, lines(":pick 2", "recipe for roast", "1", "s"))
    sample = run.session.last_samples[0]
    assert sample.prompt == "recipe for roast" and len(sample.token_ids) == 1


def test_pick_ctrl_c_stops_it(random_model, plugins):
    run = run_script(random_model, plugins, lines("roast", ":pick") .replace(":pick\r", ":pick\r1\r\x03"))
    assert run.session.last_samples[0].stop_reason == StopReason.INTERRUPTED
    assert "1 token" in run.out


def batch(random_model, plugins, text: str) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=1, max_tokens=3), keep_transcript=False)
    status = BatchRunner(session, frontend).run(text.splitlines())
    return out.getvalue(), err.getvalue(), status


def test_batch_mode_tables_go_to_stderr(random_model, plugins):
    out, err, status = batch(random_model, plugins, "recipe for roast\n:probs 3\n:compare 1 0.2\n:probs every\nroast\n")
    assert status == 0
    assert "next word after" not in out and out.count("\n") == 2  # stdout: the two samples only
    assert err.count("next word after “recipe for roast”") == 2 and "T = 0.2" in err
    assert "probs = every" in err


def test_probs_after_batch_prompts_uses_the_last_batch(random_model, plugins):
    out, err, status = batch(random_model, plugins, "roast chicken\n:probs 2\n")
    assert status == 0 and "next word after “roast chicken”" in err


def test_batch_tables_show_user_text_literally(random_model, plugins):
    out, err, status = batch(random_model, plugins, ":stop [bold red]x\x1b[31m\n:settings\n")
    assert status == 0
    assert "[bold red]x\\x1b[31m" in err and "\x1b" not in err


def test_batch_mode_refuses_pick(random_model, plugins):
    out, err, status = batch(random_model, plugins, "roast\n:pick\n")
    assert status == 1 and ":pick needs an interactive terminal" in err


def test_prob_table_marks_a_drawn_word_outside_the_top(random_model, plugins):
    session = Session(plugins, BatchFrontend(io.StringIO(), io.StringIO()), ModelSpec(random_model))
    vocab = session.engine.vocab
    probs = np.full(len(vocab), 1.0 / len(vocab))
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(prob_table(vocab, probs, 2, title="t", chosen=7))
    assert "…" in buf.getvalue() and "◀ drawn" in buf.getvalue()


def test_pick_reports_to_plugin_hooks(random_model):
    from recipe_repl.plugin.hookspecs import hookimpl
    from recipe_repl.plugin.manager import Plugins

    seen: list[tuple[str, object]] = []

    class Spy:
        @hookimpl
        def on_prompt(self, prompt, prompt_ids, settings):
            seen.append(("prompt", prompt))

        @hookimpl
        def on_token(self, token_id, word, probability, step):
            seen.append(("token", (word, step)))

        @hookimpl
        def on_sample_end(self, sample):
            seen.append(("end", sample.stop_reason.value))

    plugins = Plugins(load_third_party=False)
    plugins.pm.register(Spy(), name="spy")
    run_script(random_model, plugins, lines(":pick 3", "roast", "chicken", "=1", "s"))
    assert seen == [("prompt", "roast"), ("token", ("chicken", 0)), ("token", ("1", 1)), ("end", "interrupted")]
