"""The generation loop: stop reasons, batching, reproducibility, O(1) steps, continue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import Request, StopReason, TokenEvent, generate
from recipe_repl.model.engine import OnnxEngine
from tests.conftest import WORDS
from tests.fake_engine import chain_engine

CHAIN = ["", "[UNK]", "recipe", "for", "roast", "chicken", "with", "salt", "."]


def run(engine, prompts, settings, plugins, batch_size=32, listener=None):
    reqs = [Request(p, key=i) for i, p in enumerate(prompts)]
    return list(generate(engine, reqs, settings, plugins.processor_specs(), listener, batch_size))


def test_stop_token_ends_the_sample_and_is_not_text(plugins) -> None:
    [s] = run(chain_engine(CHAIN), ["recipe for"], Settings(seed=1), plugins)
    assert s.words == ["roast", "chicken", "with", "salt", "."]
    assert s.stop_reason is StopReason.STOP_TOKEN
    assert s.text == "Recipe for roast chicken with salt."


def test_max_tokens_counts_generated_tokens_only(plugins) -> None:
    [s] = run(chain_engine(CHAIN), ["recipe for"], Settings(seed=1, max_tokens=3), plugins)
    assert s.words == ["roast", "chicken", "with"] and s.stop_reason is StopReason.MAX_TOKENS


def test_stop_string(plugins) -> None:
    [s] = run(chain_engine(CHAIN), ["recipe"], Settings(seed=1, stop="with"), plugins)
    assert s.words[-1] == "with" and s.stop_reason is StopReason.STOP_STRING


def test_empty_prompt_is_a_user_error(plugins) -> None:
    with pytest.raises(UserError):
        run(chain_engine(CHAIN), ["   "], Settings(), plugins)


def test_each_token_costs_one_step_not_the_prefix(plugins) -> None:
    engine = chain_engine(CHAIN, ending=False)
    [s] = run(engine, ["recipe for roast chicken"], Settings(seed=1, max_tokens=50), plugins)
    assert len(s.words) == 50
    # prompt fed once (4 tokens) + one token per further step; never the whole prefix again
    assert engine.fed_tokens == 4 + 49
    assert engine.calls == 1 + 49


def test_events_report_each_word_with_its_probability(plugins) -> None:
    events: list[TokenEvent] = []

    class Rec:
        def on_prompt(self, request, ids, settings): events.append(("prompt", list(ids)))  # type: ignore[arg-type]
        def on_token(self, e): events.append(e)  # type: ignore[arg-type]
        def on_sample_end(self, s): events.append(("end", s.stop_reason))  # type: ignore[arg-type]

    run(chain_engine(CHAIN), ["salt"], Settings(seed=1), plugins, listener=Rec())
    assert events[0] == ("prompt", [7])
    tok = events[1]
    assert isinstance(tok, TokenEvent) and tok.word == "." and tok.prob > 0.99
    stop = events[2]
    assert isinstance(stop, TokenEvent) and stop.token_id == 0 and stop.word == ""
    assert events[3] == ("end", StopReason.STOP_TOKEN)


@pytest.fixture(scope="module")
def onnx_engine(tmp_path_factory) -> OnnxEngine:
    path = build_random_lstm(tmp_path_factory.mktemp("m") / "r.onnx", WORDS, scale=1.5, seed=4)
    return OnnxEngine(path, threads=1)


def test_prompt_at_once_equals_token_by_token(onnx_engine: OnnxEngine) -> None:
    ids = np.array([onnx_engine.vocab.encode("recipe for roast chicken , mix salt")])
    full, st_full = onnx_engine.forward(ids, onnx_engine.start(1))
    state = onnx_engine.start(1)
    steps = []
    for t in ids[0]:
        out, state = onnx_engine.forward(np.array([[t]]), state)
        steps.append(out[0, -1])
    np.testing.assert_allclose(full[0], np.array(steps), atol=1e-5)
    np.testing.assert_allclose(st_full.arrays[0], state.arrays[0], atol=1e-6)


PROMPTS = ["recipe for roast", "mix", "bake until golden brown", "salt and pepper", "heat the oven", "a"] * 3


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_seeded_output_is_identical_whatever_the_batch_size(onnx_engine, plugins, batch_size: int) -> None:
    settings = Settings(seed=11, max_tokens=25, temperature=0.9, top_k=10)
    reference = [s.token_ids for s in run(onnx_engine, PROMPTS, settings, plugins, batch_size=1)]
    got = [s.token_ids for s in run(onnx_engine, PROMPTS, settings, plugins, batch_size=batch_size)]
    assert got == reference
    assert len({tuple(t) for t in got}) > 3  # the samples really differ from one another


def test_padding_free_prefill_matches_a_lone_prompt(onnx_engine, plugins) -> None:
    settings = Settings(temperature=0, max_tokens=15)
    alone = run(onnx_engine, ["bake until golden brown"], settings, plugins)[0].token_ids
    mixed = run(onnx_engine, ["a", "bake until golden brown", "mix salt"], settings, plugins)[1].token_ids
    assert mixed == alone


def test_continue_equals_one_longer_generation(onnx_engine, plugins) -> None:
    long = run(onnx_engine, ["recipe for roast"], Settings(seed=1, max_tokens=30, allow_unk=False), plugins)[0]
    if long.stop_reason is not StopReason.MAX_TOKENS:
        pytest.fail("the random model stopped early; pick another seed")
    first = run(onnx_engine, ["recipe for roast"], Settings(seed=1, max_tokens=12, allow_unk=False), plugins)[0]
    assert first.resume is not None and first.resume.pending == (first.token_ids[-1],)
    req = Request("recipe for roast", key=0, resume=first.resume)
    [more] = generate(onnx_engine, [req], Settings(seed=1, max_tokens=18, allow_unk=False), plugins.processor_specs())
    assert first.token_ids + more.token_ids == long.token_ids
    assert more.text == long.text


def test_stateless_model_runs_by_refeeding_and_agrees(tmp_path: Path, plugins) -> None:
    stateful = OnnxEngine(build_random_lstm(tmp_path / "a.onnx", WORDS, scale=1.5, seed=9))
    vocab_file = tmp_path / "vocab.json"
    vocab_file.write_text(__import__("json").dumps(WORDS))
    stateless = OnnxEngine(build_random_lstm(tmp_path / "b.onnx", WORDS, scale=1.5, seed=9, stateless=True),
                           vocab_path=vocab_file)
    assert stateless.info.kind == "stateless" and stateful.info.kind == "stateful"
    settings = Settings(temperature=0, max_tokens=20)
    a = run(stateful, ["recipe for roast", "mix"], settings, plugins)
    b = run(stateless, ["recipe for roast", "mix"], settings, plugins)
    assert [s.token_ids for s in a] == [s.token_ids for s in b]


def test_interrupt_keeps_what_was_generated(plugins) -> None:
    engine = chain_engine(CHAIN, ending=False)

    class StopAfterThree:
        def on_prompt(self, *a): pass
        def on_token(self, e):
            if e.step == 2:
                raise KeyboardInterrupt
        def on_sample_end(self, s): pass

    [s] = run(engine, ["recipe"], Settings(seed=1, max_tokens=50), plugins, listener=StopAfterThree())
    assert s.stop_reason is StopReason.INTERRUPTED
    assert s.words == ["for", "roast", "chicken"]


# --- the chooser, bounded prefill ---------------------------------------------------------------------


def test_a_chooser_decides_the_tokens_and_the_loop_does_the_rest(plugins) -> None:
    from recipe_repl.generate.loop import STOP_HERE, Step

    seen: list[Step] = []
    histories: list[list[int]] = []
    answers = iter([6, 4, 0])  # "with", "roast", then the stop token

    def chooser(step: Step) -> list[int]:
        seen.append(step)
        histories.append(list(step.history[0]))  # the loop's own lists: read them during the call
        return [next(answers)]

    [s] = list(generate(chain_engine(CHAIN), [Request("recipe for")], Settings(seed=1), plugins.processor_specs(),
                        chooser=chooser))
    assert s.words == ["with", "roast"] and s.stop_reason is StopReason.STOP_TOKEN
    assert [st.step for st in seen] == [0, 1, 2]
    assert histories == [[2, 3], [2, 3, 6], [2, 3, 6, 4]]  # prompt ids, then what was chosen
    assert s.probs == [float(seen[0].probs[0, 6]), float(seen[1].probs[0, 4])]

    stop_now = iter([5, STOP_HERE])
    [s] = list(generate(chain_engine(CHAIN), [Request("recipe for")], Settings(seed=1), plugins.processor_specs(),
                        chooser=lambda step: [next(stop_now)]))
    assert s.words == ["chicken"] and s.stop_reason is StopReason.INTERRUPTED and s.resume is not None
    [more] = list(generate(chain_engine(CHAIN), [Request("recipe for", resume=s.resume)], Settings(seed=1),
                           plugins.processor_specs()))
    assert more.words == ["with", "salt", "."]  # the chain goes on from "chicken"


def test_the_default_chooser_is_the_samplers_draw(random_model: Path, plugins) -> None:
    from recipe_repl.generate.loop import draw_chooser

    engine = OnnxEngine(random_model)
    settings = Settings(seed=4, max_tokens=15)
    a = list(generate(engine, [Request("roast", key=2)], settings, plugins.processor_specs()))
    b = list(generate(engine, [Request("roast", key=2)], settings, plugins.processor_specs(), chooser=draw_chooser))
    assert a[0].token_ids == b[0].token_ids and len(a[0].token_ids) > 0


def test_long_prompts_are_fed_in_chunks_with_the_same_result(random_model: Path, monkeypatch) -> None:
    from recipe_repl.generate import loop as generation

    engine = OnnxEngine(random_model)
    ids = np.array([[2, 3, 4, 5, 9, 12, 7, 8, 2, 3, 4]], dtype=np.int64)
    whole, whole_state = engine.forward(ids, engine.start(1))
    monkeypatch.setattr(generation, "PREFILL_FLOATS", 3 * len(engine.vocab))  # three positions a call
    last, state = generation.prefill(engine, ids, engine.start(1))
    np.testing.assert_allclose(last, whole[:, -1, :], atol=1e-5)
    for a, b in zip(state.arrays, whole_state.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_prompt_length_is_capped_with_a_clear_error(random_model: Path, plugins) -> None:
    engine = OnnxEngine(random_model)
    reqs = [Request("roast chicken " * 30)]
    with pytest.raises(UserError, match="over the limit of 50 tokens"):
        list(generate(engine, reqs, Settings(), plugins.processor_specs(), max_prompt_tokens=50))
    [s] = list(generate(engine, reqs, Settings(max_tokens=2), plugins.processor_specs(), max_prompt_tokens=60))
    assert len(s.token_ids) <= 2


def _peak_rss_mib(args: list[str], stdin: bytes) -> tuple[int, float, bytes]:
    """Run the CLI in a child process; return its exit status, its peak resident memory (MiB) and stderr.

    The peak is the child's own VmHWM: `ru_maxrss` would carry over the parent's peak through
    fork and exec (a test process that trained a Keras model first would count).
    """
    import os
    import subprocess
    import sys

    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status (Linux) to read a process's peak memory")
    repo = Path(__file__).resolve().parents[1]
    code = ("import sys\nfrom recipe_repl.frontends.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
            "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "    sys.stderr.write(f'\\nHWM {hwm}\\n')\n")
    r = subprocess.run([sys.executable, "-c", code, *args], input=stdin, capture_output=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(repo)})
    hwm_kib = int(r.stderr.decode().rsplit("HWM ", 1)[1].split()[0])
    return r.returncode, hwm_kib / 1024, r.stderr


def test_a_huge_prompt_is_refused_or_fed_in_bounded_memory(random_model: Path) -> None:
    line = ("recipe for roast chicken , " * 180_000).encode() + b"\n"  # 4.9 MB on one line, 900,000 tokens
    status, rss, err = _peak_rss_mib(["--model", str(random_model), "--max-tokens", "1", "--no-plugins"], line)
    assert status == 1 and b"line 1: error: the prompt is over the limit of 10,000 tokens" in err
    assert rss < 500
    status, rss, err = _peak_rss_mib(["--model", str(random_model), "--max-tokens", "1", "--no-plugins",
                                      "--max-prompt-tokens", "1000000"], line)
    assert status == 0, err
    assert rss < 500  # the whole [1, 900000, vocab] logits would not be kept
