"""The shipped model in models/: what `make run` and `recipe-repl generate` use when --model is not given."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import onnx
from recipe_repl.models import DEFAULT_MODEL

from recipe_repl.model import contract
from recipe_repl.model.engine import OnnxEngine

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "models" / "MODEL_CARD.md"


def test_default_model_is_the_shipped_file_and_writes_a_recipe() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "generate", "recipe for roast", "--seed", "3",
                        "--max-tokens", "60", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["text"].startswith("Recipe for roast")
    assert len(out["tokens"]) >= 5 and "[UNK]" not in out["tokens"]
    assert out["stop_reason"] in ("stop token", "max tokens")


def test_shipped_file_follows_the_contract() -> None:
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size < 20 * 2**20
    model = onnx.load(str(DEFAULT_MODEL))
    ops = {n.op_type for n in model.graph.node}
    assert "LSTM" in ops and "Loop" not in ops and "Scan" not in ops
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta[contract.META_TRAINING])["corpus"].startswith("builtin")
    engine = OnnxEngine(DEFAULT_MODEL)
    assert engine.stateful and engine.vocab.word(0) == "" and engine.vocab.word(1) == "[UNK]"
    assert len(engine.vocab) == json.loads(meta[contract.META_CONFIG])["vocab_size"]


def test_model_card_records_the_goal_and_how_to_rebuild() -> None:
    text = CARD.read_text(encoding="utf-8")
    ratio = float(re.search(r"Perplexity ratio LSTM / 3-gram: \*\*([\d.]+)\*\*", text).group(1))
    assert 0 < ratio < 1  # the card's own figure; `recipe-repl eval` recomputes it (see the card)
    assert "make model" in text and "Temperature 0.2" in text


def test_model_card_samples_are_what_generate_prints() -> None:
    """The card's samples come from the same code as `recipe-repl generate`: byte for byte."""
    from recipe_repl.export.model_card import card_samples

    env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1"}
    for temperature, seed in ((1.0, 2), (0.2, 1)):
        [(got_seed, reason, text)] = card_samples(DEFAULT_MODEL, temperature, [seed])
        r = subprocess.run([sys.executable, "-m", "recipe_repl", "generate", "recipe for", "--seed", str(seed),
                            "--temperature", str(temperature), "--max-tokens", "80", "--model", str(DEFAULT_MODEL)],
                           capture_output=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout == (text + "\n").encode("utf-8") and got_seed == seed
        assert reason in ("stop token", "max tokens") and f"· {reason}]" in r.stderr.decode()


def test_the_cards_own_sample_lines_are_what_generate_prints() -> None:
    """Each `- seed N (reason): text` line under "Temperature T:" is `recipe-repl generate`'s output."""
    card = CARD.read_text(encoding="utf-8").split("## Samples", 1)[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1"}
    checked = 0
    for block in re.split(r"^Temperature ", card, flags=re.M)[1:3]:
        temperature = block.split(":", 1)[0]
        seed, reason, text = re.search(r"^- seed (\d+) \(([^)]+)\): (.*)$", block, flags=re.M).groups()
        r = subprocess.run([sys.executable, "-m", "recipe_repl", "generate", "recipe for", "--seed", seed,
                            "--temperature", temperature, "--max-tokens", "80", "--model", str(DEFAULT_MODEL)],
                           capture_output=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode("utf-8") == text + "\n" and f"· {reason}]" in r.stderr.decode()
        checked += 1
    assert checked == 2
