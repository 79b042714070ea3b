"""Issue 23 §3: memory in the new views and in batch mode, measured by the child process's own peak (VmHWM).

Each input is sized to show the class on today's numbers (the peak grows with the texts, the models,
the prompts or the samples) while the run stays a matter of seconds; the goal is the same for all:
under 500 MiB.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_repl.export.random_model import build_random_lstm

from tests.conftest import WORDS
from tests.hostile import REPO, child

LIMIT_MIB = 500


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 units, as the shipped model: every state kept for 1,000 texts of 400 words is 800 MB."""
    return build_random_lstm(tmp_path_factory.mktemp("wide") / "wide.onnx", WORDS, units=256, seed=4)


@pytest.fixture(scope="module")
def many_words(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 words, so that 100 alternatives a step are real; small weights, so samples run to max tokens."""
    words = ["", "[UNK]", "recipe", "for", "roast"] + [f"w{i}" for i in range(295)]
    return build_random_lstm(tmp_path_factory.mktemp("many") / "many.onnx", words, scale=0.1, seed=5)


def test_cells_find_over_a_thousand_texts_of_400_words(wide_model: Path, tmp_path: Path) -> None:
    rng = random.Random(0)
    texts = tmp_path / "texts.txt"
    words = [w for w in WORDS[2:] if w not in ("(", ")")] + ["|", "step"]
    texts.write_text("".join(" ".join(rng.choice(words) for _ in range(400)) + "\n" for _ in range(1000)))
    assert texts.stat().st_size < 5_000_000  # within the documented cap of :cells find's files
    status, peak, out, err = child(["--model", str(wide_model)], f":cells find step {texts}\n".encode(), timeout=300)
    assert status == 0, err
    assert "1000 texts of texts.txt: 400,000 words" in " ".join(err.split()), err
    assert peak < LIMIT_MIB, f"{peak:.0f} MiB"


def test_compare_models_opens_one_model_at_a_time(tmp_path: Path) -> None:
    words = ["", "[UNK]", "recipe", "for", "roast"] + [f"w{i}" for i in range(9995)]
    big = build_random_lstm(tmp_path / "big.onnx", words, units=1200, embedding_dim=8, seed=1)  # 71 MB
    small = build_random_lstm(tmp_path / "small.onnx", words[:40], seed=2)  # the session's own model
    peaks = {}
    for n in (2, 6):
        status, peaks[n], out, err = child(["--model", str(small)], (b"recipe for roast\n:compare-models "
                                                                     + b" ".join([str(big).encode()] * n) + b"\n"),
                                           timeout=300)
        assert status == 0, err
        assert err.count("big.onnx") >= n, err  # n columns
    # four more models held at once would add ~360 MiB; one at a time, only what the allocator keeps (20-90)
    assert peaks[6] - peaks[2] < 150, peaks
    assert peaks[6] < LIMIT_MIB, peaks


@pytest.mark.slow  # 1,000 prompts with 100 alternatives each: 17-19 s
def test_batch_json_with_100_alternatives_bounds_what_it_keeps(many_words: Path) -> None:
    prompts = b"recipe for roast\n" * 300  # 3 million alternatives: 677 MiB before, when only tokens counted
    status, peak, out, err = child(["--model", str(many_words), "--json", "--top-alternatives", "100",
                                    "--max-tokens", "100", "--seed", "1"], prompts, keep_stdout=False, timeout=300)
    assert status == 0, err
    assert peak < LIMIT_MIB, f"{peak:.0f} MiB"


@pytest.mark.slow  # 1,000 prompts with 100 alternatives each: 17-19 s
def test_generate_streams_records_with_100_alternatives(many_words: Path) -> None:
    status, peak, out, err = child(["generate", "recipe for", "--model", str(many_words), "--n", "1000", "--json",
                                    "--top-alternatives", "100", "--max-tokens", "50", "--seed", "1"],
                                   keep_stdout=False, timeout=300)  # 5 million alternatives: 557 MiB when all held
    assert status == 0, err
    assert peak < LIMIT_MIB, f"{peak:.0f} MiB"


def test_generate_writes_each_batch_as_it_finishes(many_words: Path, tmp_path: Path) -> None:
    """SIGTERM after the second batch: the samples finished before it are on stdout, whole."""
    plugin = tmp_path / "term.py"
    plugin.write_text("import os, signal\nfrom recipe_repl.plugin.hookspecs import hookimpl\nended = [0]\n"
                      "@hookimpl\ndef on_sample_end(sample):\n    ended[0] += 1\n"
                      "@hookimpl\ndef on_token(step):\n"
                      "    if ended[0] >= 64 and step == 3:\n        os.kill(os.getpid(), signal.SIGTERM)\n")
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "--plugin", str(plugin), "generate", "recipe for",
                        "--model", str(many_words), "--n", "1000", "--json", "--max-tokens", "20", "--seed", "1"],
                       capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode != 0
    records = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(records) >= 64 and [r["sample"] for r in records] == list(range(len(records)))


@pytest.mark.parametrize("word", ["a" * 20_000_000, ", " * 10_000_000])
def test_branch_respects_the_prompt_limit(random_model: Path, word: str) -> None:
    stdin = b"recipe for roast\n:branch 2 " + word.encode() + b"\n:branch 2 whisk\n"
    status, peak, out, err = child(["--model", str(random_model), "--max-tokens", "5", "--seed", "1"], stdin,
                                   timeout=60)
    assert "Traceback" not in err
    assert len(out.decode().splitlines()) == 3 if word.startswith("a") else 2  # the batch went on
    if word.startswith(","):
        assert "over the limit of 10,000 tokens (--max-prompt-tokens)" in err
    assert peak < LIMIT_MIB, f"{peak:.0f} MiB"
