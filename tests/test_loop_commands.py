"""Seeing the loop work (issue 20 §4): `:pace MS|off` and `:step`, through the REPL's pipe input and in batch
mode (the real terminal is tests/test_pty.py's)."""

from __future__ import annotations

import io
import re

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.frontends.live_view import Pacer
from recipe_repl.session.session import ModelSpec, Session
from tests.helpers import CTRL_C, CTRL_D, lines, run_script


def test_step_shows_each_drawn_word_with_its_table_and_draws_what_the_prompt_draws(random_model, plugins):
    plain = run_script(random_model, plugins, lines(":seed 7", ":temp 0.8", ":max 3", "recipe for roast"))
    stepped = run_script(random_model, plugins, lines(":seed 7", ":temp 0.8", ":max 3", ":step", "recipe for roast",
                                                      "", "", ""))
    assert stepped.session.last_samples[0].text == plain.session.last_samples[0].text
    out = stepped.out
    assert out.count("◀ drawn") == 3 and "(step 3)" in out
    assert "model" in out and "sampling" in out  # T = 0.8: both columns, labelled
    sample = stepped.session.last_samples[0]
    for k, word in enumerate(sample.words):  # word numbers of the whole text: the prompt's three come first
        assert re.search(rf"word {4 + k}: {re.escape(word)} \(drawn at", out)


def test_step_stops_on_s_or_ctrl_c_and_keeps_the_text(random_model, plugins):
    for stop in ("s\r", CTRL_C):
        typed = ":seed 3\r:max 10\rrecipe for roast\r:step\r" + "\r\r" + stop + ":continue\r" + CTRL_D
        run = run_script(random_model, plugins, typed)
        assert run.out.count("◀ drawn") == 2
        assert "2 tokens · perplexity" in run.out and "interrupted" in run.out
        assert len(run.session.last_text) > 3 + 2  # :continue went on from the kept words


def test_pace_streams_at_most_one_word_per_interval(random_model, plugins):
    run = run_script(random_model, plugins, lines(":pace 5", ":max 4", "recipe for roast", ":pace off", ":pace x",
                                                  ":pace 0"))
    assert "pace = 5 ms" in run.out and "pace off" in run.out and "milliseconds, or off, not 'x'" in run.out
    assert run.session.last_samples[0].text in " ".join(run.out.split())


def test_pacer_waits_out_the_interval_after_each_word() -> None:
    now = [10.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    pacer = Pacer(200, clock=lambda: now[0], sleep=sleep)
    pacer.wait()  # the first word: no wait
    now[0] += 0.05  # the model took 50 ms
    pacer.wait()
    now[0] += 0.5  # slower than the pace: no wait
    pacer.wait()
    assert slept == [0.15]


def test_step_and_pace_need_a_terminal(random_model, plugins):
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=1, max_tokens=3))
    status = BatchRunner(session, frontend).run(["recipe for roast", ":step", ":pace 100"])
    assert status == 1
    assert err.getvalue().splitlines() == ["line 2: error: :step needs an interactive terminal",
                                           "line 3: error: :pace needs an interactive terminal"]
