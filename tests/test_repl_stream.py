"""The streamed line wraps at word boundaries, punctuation staying with its word; the footer's hints.

Pipe input into a real REPL on the random-weight model (whose vocabulary is full of punctuation),
rendered on a rich Console of a fixed, narrow width.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rich.cells import cell_len

from recipe_repl.generate.loop import StopReason
from recipe_repl.model.vocab import detokenize_pieces
from recipe_repl.views import render
from recipe_repl.views.wrap import StreamWrapper
from tests.helpers import lines, run_script

NEVER_FIRST = tuple(",.;:!?)]}%")  # never has a space before it in the readable text
PROMPTS = ("recipe for roast chicken", "mix salt , pepper", "bake until golden", "1/2 cup")
FOOTER = re.compile(r"^\s+\d+ tokens? · ")


def streamed_blocks(out: str) -> list[list[str]]:
    """The lines of each streamed sample: from the line that starts with a prompt to its footer.

    Looked for after the `:max` line (the banner, wrapped at a narrow width, mentions a prompt too).
    """
    blocks: list[list[str]] = []
    current: list[str] | None = None
    starts = ("Recipe for", "Mix salt", "Bake until", "1/2 cup", "recipe for", "mix salt", "bake until", "1 / 2")
    text = out.splitlines()
    after = next(k for k, line in enumerate(text) if line.startswith("max tokens = "))
    for line in text[after + 1:]:
        if FOOTER.match(line):
            if current is not None:
                blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
        elif line.startswith(starts):
            current = [line]
    return blocks


def break_offsets(words: list[str]) -> set[int]:
    """Offsets in the readable text where a line may begin: just after the space before a word."""
    offsets, at = set(), 0
    for piece in detokenize_pieces(words):
        if piece.startswith(" "):
            offsets.add(at + 1)
        at += len(piece)
    return offsets


@pytest.mark.parametrize("width", [24, 41])
def test_streamed_text_wraps_at_words_and_punctuation_never_starts_a_line(random_model, plugins, width):
    # Low temperatures keep the random model from its stop token: long samples.
    run = run_script(random_model, plugins, lines(":max 300", ":temp 0.3", *PROMPTS, ":temp 0.5", *PROMPTS),
                     width=width)
    entries = [e for e in run.session.transcript if e.kind == "prompt"]
    blocks = streamed_blocks(run.out)
    assert len(blocks) == len(entries) == 8
    wrapped = 0
    for entry, block in zip(entries, blocks, strict=True):
        record = entry.samples[0]
        words = record["prompt_tokens"] + record["tokens"]
        assert all(cell_len(line) <= width for line in block), block
        assert not any(line.startswith(NEVER_FIRST) for line in block), block
        text = " ".join(block)
        marker = " " + render.END_MARKER
        if record["stop_reason"] == "stop token":
            assert text.endswith(marker)
            text = text[: -len(marker)]
        assert text == record["text"]  # only spaces became line ends
        allowed, at = break_offsets(words), 0
        for line in block[:-1]:
            at += len(line) + 1
            if at < len(record["text"]):
                assert at in allowed, (record["text"][at - 10: at + 10], block)
        wrapped += len(block) - 1
    assert wrapped > 50  # long samples on a narrow screen: plenty of line ends were decided


@pytest.mark.parametrize("mode", [(":heat on",), (":raw on",), (":raw on", ":heat on")])
def test_heat_and_raw_wrap_the_same_way(random_model, plugins, mode):
    width = 30
    run = run_script(random_model, plugins, lines(*mode, ":max 300", ":temp 0.3", *PROMPTS), width=width)
    blocks = streamed_blocks(run.out)
    entries = [e for e in run.session.transcript if e.kind == "prompt"]
    assert len(blocks) == len(entries) == 4
    for entry, block in zip(entries, blocks, strict=True):
        assert all(cell_len(line) <= width for line in block), block
        assert not any(line.startswith(NEVER_FIRST) for line in block), block
        text = " ".join(block)
        if ":raw on" in mode and ":heat on" not in mode:
            assert text.startswith(" ".join(entry.samples[0]["prompt_tokens"] + entry.samples[0]["tokens"]))
    if ":heat on" in mode and ":raw on" in mode:
        assert re.search(r"\w\(0\.\d\d\)", run.out)  # word(0.42)


RESIZE_PLUGIN = '''
from recipe_repl.plugin.hookspecs import hookimpl


def _resize(session, args):
    session.frontend.console.width = int(args)


@hookimpl
def register_commands(register):
    register("resize", _resize, usage=":resize COLUMNS")
'''


def test_a_terminal_resized_between_samples_is_wrapped_at_its_new_width(random_model, tmp_path):
    from recipe_repl.plugin.manager import Plugins

    path = tmp_path / "resize_plugin.py"
    path.write_text(RESIZE_PLUGIN, encoding="utf-8")
    plugins = Plugins(load_third_party=True, modules=[str(path)], entry_points=False)
    prompts = [p for p in PROMPTS for _ in range(2)]
    run = run_script(random_model, plugins, lines(":max 300", ":temp 0.3", *prompts, ":resize 30", *prompts),
                     width=100)
    blocks = streamed_blocks(run.out)
    assert len(blocks) == 2 * len(prompts)
    wide, narrow = blocks[: len(prompts)], blocks[len(prompts):]
    assert max(cell_len(line) for b in wide for line in b) > 30  # the first samples used the 100 columns
    assert max(cell_len(line) for b in narrow for line in b) <= 30
    assert sum(len(b) for b in narrow) > sum(len(b) for b in wide)
    for block in narrow:
        assert not any(line.startswith(NEVER_FIRST) for line in block), block


def test_wrapper_holds_a_word_until_the_next_begins():
    wrap = StreamWrapper(20)
    wrap.put_text("Stir until it is")
    wrap.put(" smooth")
    assert wrap.take().plain == "Stir until it is"  # "smooth" may still get its full stop
    wrap.put(".")
    wrap.put(" Step")
    assert wrap.take().plain == "\nsmooth."  # 16 + 8 > 20: the word and its stop move on together
    wrap.put(" " + "x" * 45)
    wrap.place()
    assert [len(line) for line in wrap.take().plain.split("\n")] == [5, 20, 20, 5]  # " Step", then a word too long


def test_the_max_tokens_hint_comes_once_when_a_sentence_is_cut(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 5", *PROMPTS * 2), width=200)
    footers = [line for line in run.out.splitlines() if FOOTER.match(line)]
    samples = [e.samples[0] for e in run.session.transcript if e.kind == "prompt"]
    cut = [k for k, s in enumerate(samples) if s["stop_reason"] == "max tokens" and s["tokens"][-1] not in ".!?"]
    assert cut, "with 5 tokens at most some sample stops mid-sentence"
    hinted = [k for k, line in enumerate(footers) if "the cap cut a sentence" in line]
    assert hinted == [cut[0]]
    assert footers[cut[0]].endswith("max tokens — the cap cut a sentence: :max 10 raises the cap, :continue goes on")


def test_no_hint_when_the_sample_ends_a_sentence_or_stops_for_another_reason(random_model, plugins):
    from recipe_repl.frontends.repl import ReplFrontend

    run = run_script(random_model, plugins, lines(":max 4", "recipe for roast"))
    sample = run.session.last_samples[0]
    frontend: ReplFrontend = run.session.frontend  # type: ignore[assignment]
    frontend.cut_hint_shown = False
    ended = replace(sample, words=[*sample.words[:-1], "."], stop_reason=StopReason.MAX_TOKENS)
    assert frontend._cut_hint(ended) == ""
    stopped = replace(sample, words=[*sample.words[:-1], "salt"], stop_reason=StopReason.STOP_TOKEN)
    assert frontend._cut_hint(stopped) == ""
    cut = replace(stopped, stop_reason=StopReason.MAX_TOKENS)
    assert frontend._cut_hint(cut).startswith("the cap cut a sentence: :max 8 raises the cap")
    assert frontend._cut_hint(cut) == ""  # once a session
    assert render.max_tokens_hint(100_000) == "the cap cut a sentence: :continue goes on"
