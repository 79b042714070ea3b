"""`:lecture`: the book's tables (package data) beside this model's, at the current temperature."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from recipe_repl.models import lecture

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend, BatchRunner
from recipe_repl.generate.inspection import sampling_distribution
from recipe_repl.session.session import ModelSpec, Session
from recipe_repl.views.render import END_MARKER, percent, top_ids
from tests.helpers import lines, run_script


def sections(out: str) -> dict[str, str]:
    """Each prompt's block of :lecture's output, keyed by the prompt in its title."""
    parts = re.split(r"next word after “(.+?)”", out)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts) - 1, 2)}


BARS = re.compile("[\u2580-\u259f]")


def rows(block: str) -> list[tuple[str, str]]:
    """(this model's cell, the book's cell) of each numbered row ("" where a column has no row)."""
    out = []
    for line in block.splitlines():
        m = re.match(r"\s*\d+\s*│(.*?)│(.*)$", line)
        if m:
            out.append((" ".join(BARS.sub("", m.group(1)).split()), " ".join(BARS.sub("", m.group(2)).split())))
    return out


def ours(session: Session, prompt: str, n: int) -> list[str]:
    """This model's rows straight from ONNX Runtime and the sampler's chain under the session's settings."""
    vocab = session.engine.vocab
    ids = vocab.encode(prompt)
    out, _ = session.engine.forward(np.array([ids]), session.engine.start(1))
    probs = sampling_distribution(out[0, -1], ids, session.settings, session.plugins.processor_specs(), vocab)
    return [f"{vocab.word(i) or END_MARKER} {percent(float(probs[i]))}".strip() for i in top_ids(probs, n)]


def by_hand(words_probs: tuple[tuple[str, float], ...], temperature: float) -> list[str]:
    """The lecture's rule p ** (1 / T), normalised over the rows the book gives."""
    powered = [p ** (1 / temperature) for _, p in words_probs]
    return [f"{w} {percent(q / sum(powered))}" for (w, _), q in zip(words_probs, powered, strict=True)]


ROAST = (("turkey", 0.228), ("chicken", 0.194), ("beef", 0.102), ("pork", 0.100))


def test_lecture_at_temperature_one_prints_the_books_tables_beside_the_models(random_model, plugins):
    run = run_script(random_model, plugins, lines(":lecture"), width=100)
    found = sections(run.out)
    assert list(found) == list(lecture.PROMPTS)
    roast = rows(found["recipe for roast"])
    assert [b for _, b in roast if b] == ["turkey 22.8%", "chicken 19.4%", "beef 10.2%", "pork 10.0%"]
    assert [a for a, _ in roast] == ours(run.session, "recipe for roast", 5)
    assert "the lecture, T = 1\n" in found["recipe for roast"] and "*" not in found["recipe for roast"]
    chop = rows(found["recipe for roasted vegetables | chop 1 /"])
    assert [b for _, b in chop if b] == ["2 53.5%", "4 29.8%", "3 13.1%"]
    # the two prompts without a published table say so, and still show this model
    for prompt in lecture.PROMPTS[2:]:
        assert "no table published" in found[prompt]
        assert [a for a, _ in rows(found[prompt])] == ours(run.session, prompt, 5)
    assert "Generative Deep Learning" in run.out and "make lecture-model" in run.out
    corpus = run.session.engine.info.training.get("corpus") or run.session.engine.info.training.get("data")
    assert (f"this one was trained on {corpus}" if corpus else "does not say what it was trained on") in run.out


def test_lecture_follows_the_current_temperature_and_derives_the_books_table(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 0.2", ":lecture rows 3"), width=100)
    block = sections(run.out)["recipe for roast"]
    got = rows(block)
    assert [b for _, b in got if b] == by_hand(ROAST, 0.2)
    assert [a for a, _ in got if a] == ours(run.session, "recipe for roast", 3)
    assert "this model, T = 0.2" in block and "the lecture, T = 0.2 *" in block
    assert "upper bound" in " ".join(block.split())


def test_lecture_at_temperature_zero_and_with_top_k(random_model, plugins):
    run = run_script(random_model, plugins, lines(":temp 0", ":lecture rows 2", ":temp 0.7", ":topk 2", ":lecture"),
                     width=100)
    first, second = run.out.split("temperature = 0.7")
    greedy = rows(sections(first)["recipe for roast"])
    assert greedy[0][1] == "turkey 100%" and len([b for _, b in greedy if b]) == 1
    assert greedy[0][0].endswith("100%")
    topk = sections(second)["recipe for roast"]
    assert "this model, T = 0.7, top-k 2" in topk
    mine = [a for a, _ in rows(topk) if a]
    assert mine == ours(run.session, "recipe for roast", 5) and len(mine) == 2  # top-k 2 leaves two words
    assert "the book's is temperature alone" in second


def test_lecture_in_batch_mode_goes_to_stderr(random_model, plugins):
    out, err = io.StringIO(), io.StringIO()
    frontend = BatchFrontend(out, err)
    session = Session(plugins, frontend, ModelSpec(random_model), Settings(seed=1), keep_transcript=False)
    assert BatchRunner(session, frontend).run([":lecture rows 1"]) == 0
    assert "turkey 22.8%" in err.getvalue() and out.getvalue() == ""


@pytest.mark.parametrize("line", [":lecture 5", ":lecture rows", ":lecture rows x"])
def test_lecture_bad_arguments_are_one_line(random_model, plugins, line):
    run = run_script(random_model, plugins, lines(line, ":lecture rows 1"), width=100)
    assert "Traceback" not in run.out and run.status == 0
    assert "error" in run.out.lower() or ":lecture" in run.out
    assert "turkey 22.8%" in run.out  # the prompt came back and the next command ran


def test_the_lecture_tables_at_any_temperature():
    assert lecture.at_temperature("recipe for roast", 1.0) == lecture.table("recipe for roast", 1.0)
    half = lecture.at_temperature("recipe for roast", 0.5)
    assert half is not None and half.derived
    want = [p ** 2 for _, p in ROAST]
    assert [round(p, 6) for _, p in half.rows] == [round(p / sum(want), 6) for p in want]
    greedy = lecture.at_temperature("recipe for roast", 0.0, greedy=True)
    assert greedy is not None and greedy.rows == (("turkey", 1.0),)
    assert lecture.at_temperature("recipe for chocolate ice cream |", 0.5) is None
