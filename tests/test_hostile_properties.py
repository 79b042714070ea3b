"""Property test (issue 14 §1): whatever words a model file holds and whatever lines come in, no raw control,
DEL, C1, bidi or other format character reaches stdout or stderr, in any mode.

Each example builds a small random-weight ONNX model (no TensorFlow) over a random vocabulary and runs the
real entry point `recipe_repl.frontends.cli.main` in-process on byte streams: batch text, batch --json, generate,
generate --json, and errors that echo a path or a value. The check is written here, independent of the
sanitizer: it decodes the raw bytes and looks for the characters themselves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recipe_repl.export.random_model import build_random_lstm

from tests.hostile import raw_controls, run

# The characters that matter most, drawn often; the rest of Unicode through `st.characters`.
DANGER = ["\x1b", "\x07", "\x9b", "\x85", "\x7f", "\x00", "\x08", "\t", "\r", "\x0b", "\u202a", "\u202e", "\u2066",
          "\u2069", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\ufeff", "\u00ad", "\U000e0041", "]0;t",
          "[?1049h", "[31m", "é", "[UNK]"]
word_char = st.one_of(st.sampled_from([*DANGER, "\n", "\udcff"]), st.characters(codec="utf-8"))
line_char = st.one_of(st.sampled_from([c for c in DANGER if c not in ("\r", "\x0b")]),
                      st.characters(codec="utf-8", exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"))
words = st.lists(st.lists(word_char, min_size=1, max_size=5).map("".join), min_size=1, max_size=10, unique=True)
text = st.lists(line_char, max_size=10).map("".join)
lines = st.lists(
    st.one_of(text, text.map(lambda t: "recipe " + t), text.map(lambda t: ":" + t), text.map(lambda t: ":help " + t),
              text.map(lambda t: ":model " + t), text.map(lambda t: ":stop " + t), text.map(lambda t: ":temp " + t)),
    min_size=1, max_size=5,
)
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(result: tuple[int, bytes, bytes]) -> None:
    code, out, err = result
    assert not raw_controls(out), out
    assert not raw_controls(err), err
    assert b"Traceback" not in err
    assert code in (0, 1, 2), (code, err)


@PROPERTY
@given(vocabulary=words, inputs=lines, seed=st.integers(0, 2**16))
def test_no_raw_control_character_reaches_the_terminal(vocabulary: list[str], inputs: list[str], seed: int) -> None:
    model_words = ["", "[UNK]", "recipe", *[w for w in vocabulary if w not in ("", "[UNK]", "recipe")]]
    with tempfile.TemporaryDirectory() as folder:
        model = build_random_lstm(Path(folder) / "m.onnx", model_words, scale=3.0, seed=seed % 1000)
        common = ["--model", str(model), "--seed", str(seed), "--max-tokens", "8", "-t", "2"]
        stdin = "\n".join(inputs).encode("utf-8", "surrogatepass") + b"\n"
        check(run(common, stdin))
        check(run([*common, "--json"], stdin))
        arg = inputs[0].replace("\x00", "")  # a real argv cannot hold NUL
        prompt = arg.lstrip(":") or "recipe"
        check(run(["generate", prompt, *common, "--n", "2"]))
        check(run(["generate", prompt, *common, "--json"]))
        check(run(["generate", "recipe", "--model", str(Path(folder) / f"{arg}.onnx")]))
        check(run(["generate", "recipe", *common, "--top-k", arg or "x"]))
