"""Beam search as a way of generating like sampling: the loop's stop check and stepper, events, Ctrl-C."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.batch import BatchFrontend
from recipe_repl.generate.beam import beam_search, search_settings
from recipe_repl.generate.loop import Request, Sample, StopReason, TokenEvent
from recipe_repl.generate.sampling import ProcessorSpec
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.model.vocab import PAD_ID
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import ModelSpec, Session

PROMPT = "recipe for roast"
# on the test model, one of four beams ends at once with "salt"; the other three run to max tokens
SETTINGS = Settings(max_tokens=12, stop="salt")


class Recorder:
    """A listener that keeps every event."""

    def __init__(self) -> None:
        self.prompts: list[Request] = []
        self.tokens: list[TokenEvent] = []
        self.ends: list[Sample] = []

    def on_prompt(self, request: Request, prompt_ids, settings: Settings) -> None:
        self.prompts.append(request)

    def on_token(self, event: TokenEvent) -> None:
        self.tokens.append(event)

    def on_sample_end(self, sample: Sample) -> None:
        self.ends.append(sample)


def ctrl_c_at(step: int) -> ProcessorSpec:
    """A processor (`:use ctrl-c`) that passes the logits through, and raises KeyboardInterrupt at `step`."""

    def factory(settings, args, vocab):
        calls = iter(range(10_000))

        def processor(logits, context):
            if next(calls) == step:
                raise KeyboardInterrupt
            return logits

        return processor

    return ProcessorSpec("ctrl-c", factory, help="Ctrl-C at a given step")


def test_beam_search_sends_events_like_sampling(random_model: Path, plugins) -> None:
    engine = OnnxEngine(random_model)
    heard = Recorder()
    beams = beam_search(engine, PROMPT, SETTINGS, plugins.processor_specs(), width=4, key=7, listener=heard)
    assert [r.key for r in heard.prompts] == [7] and heard.ends == beams
    assert [b.key for b in beams] == [7, 8, 9, 10]
    assert {b.stop_reason for b in beams} == {StopReason.STOP_STRING, StopReason.MAX_TOKENS}
    steps = sorted({e.step for e in heard.tokens})
    assert steps == list(range(SETTINGS.max_tokens))
    for e in heard.tokens:  # the word, its probability and the distribution it was chosen from
        assert e.request.key == 7 and e.probs[e.token_id] == pytest.approx(e.prob)
        assert float(e.probs.sum()) == pytest.approx(1.0, abs=1e-5)
        assert e.word == ("" if e.token_id == PAD_ID else engine.vocab.word(e.token_id))
    said = {(e.step, e.token_id, e.prob) for e in heard.tokens}
    for b in beams:  # every word of every beam returned was announced at its step
        assert all((k, t, p) in said for k, (t, p) in enumerate(zip(b.token_ids, b.probs, strict=True)))


def test_ctrl_c_ends_the_search_keeping_the_finished_beams(random_model: Path, plugins) -> None:
    engine = OnnxEngine(random_model)
    specs = [*plugins.processor_specs(), ctrl_c_at(5)]
    settings = SETTINGS.replace(use=(("ctrl-c", ()),))
    heard = Recorder()
    beams = beam_search(engine, PROMPT, settings, specs, width=4, listener=heard)
    # the live beams as they were after five words: what a search capped at five words keeps
    capped = beam_search(engine, PROMPT, SETTINGS.replace(max_tokens=5), plugins.processor_specs(), width=4)
    assert [(b.token_ids, b.probs) for b in beams] == [(b.token_ids, b.probs) for b in capped]
    reasons = [b.stop_reason for b in beams]
    assert reasons.count(StopReason.STOP_STRING) == 1 and reasons.count(StopReason.INTERRUPTED) == 3
    assert [b.stop_reason for b in capped] == [StopReason.MAX_TOKENS if r is StopReason.INTERRUPTED else r
                                               for r in reasons]
    assert all(len(b.token_ids) == 5 for b in beams if b.stop_reason is StopReason.INTERRUPTED)
    assert max(e.step for e in heard.tokens) == 4 and heard.ends == beams


def test_ctrl_c_while_the_prompt_is_read_gives_one_empty_interrupted_beam(random_model: Path, plugins) -> None:
    engine = OnnxEngine(random_model)
    specs = [*plugins.processor_specs(), ctrl_c_at(0)]
    [beam] = beam_search(engine, PROMPT, SETTINGS.replace(use=(("ctrl-c", ()),)), specs, width=3)
    assert beam.token_ids == [] and beam.stop_reason is StopReason.INTERRUPTED


def test_beam_mode_stops_at_ctrl_c_and_plugins_hear_every_word(random_model: Path) -> None:
    heard: list[tuple[str, object]] = []

    class Spy:
        @hookimpl
        def on_token(self, word, step, sample_key):
            heard.append(("token", (step, sample_key)))

        @hookimpl
        def on_sample_end(self, sample):
            heard.append(("end", (sample.key, sample.stop_reason.value)))

    plugins = Plugins(load_third_party=False)
    plugins.pm.register(Spy(), name="spy")
    plugins.processors["ctrl-c"] = ctrl_c_at(3)
    session = Session(plugins, BatchFrontend(io.StringIO(), io.StringIO()), ModelSpec(random_model),
                      Settings(max_tokens=12, beam=2, use=(("ctrl-c", ()),)))
    samples = session.run_requests([PROMPT, "mix salt"])
    assert [s.prompt for s in samples] == [PROMPT, PROMPT]  # the second search never started
    assert [s.stop_reason for s in samples] == [StopReason.INTERRUPTED] * 2
    assert [h for h in heard if h[0] == "end"] == [("end", (0, "interrupted")), ("end", (1, "interrupted"))]
    assert sorted({h[1] for h in heard if h[0] == "token"}) == [(0, 0), (1, 0), (2, 0)]


def test_beams_are_scored_at_temperature_one_whatever_the_temperature(random_model: Path, plugins) -> None:
    engine = OnnxEngine(random_model)
    hot = beam_search(engine, PROMPT, Settings(max_tokens=8, temperature=1.7), plugins.processor_specs(), width=3)
    plain = beam_search(engine, PROMPT, Settings(max_tokens=8), plugins.processor_specs(), width=3)
    assert [(b.token_ids, b.probs) for b in hot] == [(b.token_ids, b.probs) for b in plain]
    assert search_settings(Settings(temperature=0.3)).temperature == 1.0
    assert np.isclose(search_settings(Settings(temperature=0.3, top_k=9)).top_k, 9)


def test_ctrl_c_in_a_listener_keeps_the_words_of_that_step(random_model: Path, plugins) -> None:
    class CtrlCAtStep(Recorder):
        def on_token(self, event: TokenEvent) -> None:
            super().on_token(event)
            if event.step == 3:
                raise KeyboardInterrupt

    engine = OnnxEngine(random_model)
    heard = CtrlCAtStep()
    beams = beam_search(engine, PROMPT, SETTINGS, plugins.processor_specs(), width=4, listener=heard)
    capped = beam_search(engine, PROMPT, SETTINGS.replace(max_tokens=4), plugins.processor_specs(), width=4)
    assert [(b.token_ids, b.probs) for b in beams] == [(b.token_ids, b.probs) for b in capped]
    assert sorted(b.stop_reason.value for b in beams) == ["interrupted"] * 3 + ["stop string"]
    assert len(heard.tokens) == 1 + sum(1 for e in heard.tokens if e.step < 3) and heard.ends == beams
