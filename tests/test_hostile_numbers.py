"""Issue 23 §2: numbers that are not finite.

A hand-built model adds NaN (or +inf) to its logits at every position where it reads "chicken"
(`tests.hostile.broken_after_word`): sound until then, broken right after. Wherever logits are used —
the generation loop (sampled, greedy, chosen by a chooser, beams), scoring, eval, the inspection
views — the step and the word are named in one line, records stay valid JSON, and nothing crashes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from recipe_repl.base.sanitize import dumps
from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import Request, StopReason, generate
from recipe_repl.model.engine import OnnxEngine
from tests.conftest import WORDS
from tests.hostile import broken_after_word, raw_controls, run


def strict_json(line: str) -> dict:
    """json.loads that refuses NaN and Infinity, as strict JSON parsers (JavaScript, jq, Go) do."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module", params=["nan", "inf"])
def broken(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Writes "chicken" first almost always, then its logits are NaN (or +inf)."""
    return broken_after_word(tmp_path_factory.mktemp("broken") / f"{request.param}.onnx", WORDS, "chicken",
                             value=float(request.param), likely="chicken")


def one_error(err: bytes) -> str:
    text = err.decode()
    assert "Traceback" not in text and "RuntimeWarning" not in text, text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 1, text
    return errors[0]


# --- generation: every way a word is chosen -------------------------------------------------------------


@pytest.mark.parametrize("how", [["generate", "recipe for"], ["generate", "recipe for", "--json"],
                                 ["generate", "recipe for", "--n", "40", "--json"], ["batch"], ["batch", "--json"],
                                 ["generate", "recipe for", "-t", "0", "--json"],
                                 ["generate", "recipe for", "--top-k", "3", "--top-p", "0.8", "--min-p", "0.1",
                                  "--repetition-penalty", "1.3", "--json"],
                                 ["generate", "recipe for", "--beam", "3", "--json"], ["batch", "--beam", "2"]])
def test_generation_ends_the_sample_at_the_step_where_the_logits_break(broken: Path, how: list[str]) -> None:
    common = ["--model", str(broken), "--seed", "3", "--max-tokens", "20"]
    if how[0] == "batch":
        code, out, err = run([*common, *how[1:]], b"recipe for\nmix salt\n")
    else:
        code, out, err = run([*how, *common])
    line = one_error(err)
    assert "not finite" in line and "after “chicken”" in line and "step " in line, line
    assert code == 1
    text = out.decode()
    if "--json" in how:
        records = [strict_json(r) for r in text.splitlines()]  # no bare NaN or Infinity anywhere
        assert records and all(r["stop_reason"] in ("not finite", "max tokens", "stop token") for r in records)
        bad = [r for r in records if r["stop_reason"] == "not finite"]
        assert bad and all("chicken" in r["stop_detail"] for r in bad)
        assert all(r["tokens"][-1] == "chicken" for r in bad)  # the last word is the one after which it broke


def test_the_loop_reports_the_step_for_every_chooser(broken: Path, plugins) -> None:
    engine = OnnxEngine(broken)
    specs = plugins.processor_specs()
    for settings in (Settings(seed=1, max_tokens=10), Settings(seed=1, max_tokens=10, top_k=3, top_p=0.9),
                     Settings(seed=1, max_tokens=10, temperature=0)):
        [s] = generate(engine, [Request("recipe for roast chicken")], settings, specs)
        assert s.stop_reason == StopReason.NOT_FINITE and s.token_ids == [] and s.resume is None
        assert "at step 1, after “chicken”" in s.stop_detail and "model's logits" in s.stop_detail
        # a chooser other than the draw (`:pick`'s) is never shown a row that is not a number
        seen: list[np.ndarray] = []

        def chooser(step, seen=seen):  # noqa: ANN001, ANN202
            seen.append(step.probs)
            return [1] * len(step.probs)

        out = list(generate(engine, [Request("recipe for roast chicken"), Request("recipe for")], settings, specs,
                            chooser=chooser))
        assert out[0].stop_reason == StopReason.NOT_FINITE
        assert all(np.isfinite(p).all() for p in seen)


def test_pick_in_the_repl_says_where_and_keeps_the_prompt(broken: Path, plugins) -> None:
    from tests.test_repl import lines, run_script

    run_ = run_script(broken, plugins, lines(":pick 3", "recipe for roast chicken", ":why", ":continue",
                                             "recipe for roast"))
    assert run_.status == 0
    out = " ".join(run_.out.split())
    assert "not finite numbers (NaN or infinity) at step 1, after “chicken”" in out
    assert "nothing to continue" in out and "Traceback" not in out
    assert run_.session.last_samples and run_.session.last_samples[0].prompt == "recipe for roast"


def test_beam_search_reports_instead_of_returning_no_beam(broken: Path, plugins) -> None:
    from recipe_repl.generate.beam import beam_search

    engine = OnnxEngine(broken)
    beams = beam_search(engine, "recipe for roast chicken", Settings(max_tokens=5), plugins.processor_specs(), 4)
    assert beams and all(b.stop_reason == StopReason.NOT_FINITE for b in beams)
    assert "at step 1, after “chicken”" in beams[0].stop_detail
    beams = beam_search(engine, "recipe for", Settings(max_tokens=5), plugins.processor_specs(), 3)
    broke = [b for b in beams if b.stop_reason == StopReason.NOT_FINITE]
    assert broke and all(b.words[-1] == "chicken" for b in broke)


# --- settings the validator accepts sample sanely -------------------------------------------------------------


@pytest.mark.parametrize("temperature", ["1e-40", "1e-320", "0.0009", "5e-324"])
def test_a_temperature_below_the_floor_samples_greedily_without_warnings(random_model: Path,
                                                                         temperature: str) -> None:
    import os
    import subprocess
    import sys

    from tests.hostile import REPO

    def generate_(t: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "recipe_repl", "generate", "recipe for", "--model",
                               str(random_model), "-t", t, "--n", "3", "--max-tokens", "30", "--json", "--seed", "4"],
                              capture_output=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1"})

    low, greedy = generate_(temperature), generate_("0")
    assert low.returncode == 0 and b"Warning" not in low.stderr and b"Traceback" not in low.stderr, low.stderr
    got = [strict_json(r) for r in low.stdout.decode().splitlines()]
    want = [strict_json(r) for r in greedy.stdout.decode().splitlines()]
    assert [r["tokens"] for r in got] == [r["tokens"] for r in want] and got[0]["tokens"]
    assert all(p == 1.0 for r in got for p in r["token_probs"])  # the distribution drawn from: greedy's
    assert got[0]["temperature"] == float(temperature)  # the record keeps the setting given


def test_help_temp_states_the_floor(random_model: Path) -> None:
    code, out, err = run(["--model", str(random_model)], b":help temp\n")
    assert "below 0.001 is greedy too" in " ".join(err.decode().split())


# --- scoring and eval: which text, which word ---------------------------------------------------------------


def test_score_names_the_text_and_the_word(broken: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("recipe for roast salt\nmix salt and roast chicken with pepper\n")
    for args in (["score", str(texts)], ["score", str(texts), "--json"]):
        code, out, err = run([*args, "--model", str(broken)])
        line = one_error(err)
        assert code == 2 and f"in text 2 of {texts}, after word 5 “chicken”" in line, line
        assert "perplexity nan" not in (out + err).decode().lower() and b"NaN" not in out
    code, out, err = run(["score", "-", "--model", str(broken)], b"recipe chicken\n")
    assert "in text 1 of stdin, after word 2 “chicken”" in one_error(err)


def test_eval_names_the_held_out_recipe_and_the_word(broken: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "recipes.txt"
    corpus.write_text("".join(f"recipe for roast {i} | mix salt and chicken , bake .\n" for i in range(20)))
    code, out, err = run(["eval", str(broken), "--data", f"text:{corpus}", "--no-ngram"])
    line = one_error(err)
    assert code == 2 and "in held-out recipe 1 (“recipe for roast" in line and "after word 9 “chicken”" in line, line
    assert b"nan" not in out.lower()


# --- the inspection views ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [":why", ":why 1", ":probs", ":compare 1 0.5", ":branch 1 salt", ":back 1",
                                     ":score recipe for roast chicken salt"])
def test_views_after_the_broken_word_say_so_in_one_line(broken: Path, command: str) -> None:
    code, out, err = run(["--model", str(broken), "--seed", "3", "--max-tokens", "5"],
                         f"recipe for roast chicken\n{command}\n".encode())
    text = err.decode()
    assert "Traceback" not in text and "failed (builtin" not in text and "ValueError" not in text, text
    assert code == 1


@pytest.mark.parametrize("command", [":units-for salt", ":gates 3", ":gates", ":saliency", ":vs-ngram", ":ablate c 1",
                                     ":cells c 1"])
def test_the_views_inside_the_lstm_never_print_nan(broken: Path, command: str) -> None:
    code, out, err = run(["--model", str(broken), "--seed", "3", "--max-tokens", "5"],
                         f"recipe for roast chicken\n{command}\n".encode())
    text = (out + err).decode()
    assert "Traceback" not in text and "failed (builtin" not in text, text
    shown = text.replace("NaN or infinity", "").replace(broken.name, "MODEL")
    assert not re.search(r"[+−-]?\bnan\b|\binf\b", shown), text
    assert code == 1 and "not finite" in text


def test_bars_and_percentages_of_a_number_that_is_not_one() -> None:
    from recipe_repl.views.render import bar, percent

    assert bar(math.nan, 10) == "" and bar(math.inf, 10) == "" and percent(math.nan) == "nan"
    assert bar(0.5, 8) == "████" and percent(0.25) == "25.0%"


def test_json_output_never_holds_a_bare_nan() -> None:
    data = {"p": [0.5, math.nan, -math.inf], "nested": {"x": np.float64("nan")}, "fine": 1.0, "s": "\u202e"}
    text = dumps(data)
    assert strict_json(text) == {"p": [0.5, None, None], "nested": {"x": None}, "fine": 1.0, "s": "\u202e"}
    assert not raw_controls(text)


# --- a plugin processor that returns what cannot be sampled from -------------------------------------------------


@pytest.mark.parametrize("returns", ["x * float('nan')", "x + float('inf')", "x * 0 - float('inf')",
                                     "x.astype('int32')"])
def test_a_processor_returning_nan_or_no_possible_word_is_switched_off(tmp_path: Path, random_model: Path,
                                                                       returns: str) -> None:
    plugin = tmp_path / "poison.py"
    plugin.write_text(
        "from recipe_repl.plugin.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def register_processors(register):\n"
        f"    register('poison', lambda settings, args, vocab: lambda x, ctx: {returns})\n"
    )
    common = ["--model", str(random_model), "--seed", "5", "--max-tokens", "12", "--json"]
    code, out, err = run(["--plugin", str(plugin), *common], b":use poison\nrecipe for roast\nmix salt\n",
                         plugins=True)
    text = err.decode()
    assert code == 0, text
    assert text.count("processor poison failed") == 1, text  # once per generation (both prompts are one batch)
    assert "off for the rest of this generation; this step draws without it" in text
    _, plain, _ = run(common, b"recipe for roast\nmix salt\n")
    got = [strict_json(r)["tokens"] for r in out.decode().splitlines()]
    assert got == [strict_json(r)["tokens"] for r in plain.decode().splitlines()]  # drawn as without it
