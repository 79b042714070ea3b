"""Batch mode: tokens/s for 256 prompts × 100 tokens at batch sizes 1 and 32, and start-up time.

Start-up compares `echo prompt | recipe-repl --max-tokens 1` with `python -c "import onnxruntime,
numpy"` — the floor any ONNX Runtime tool pays — as a ratio measured in one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from common import REPO, bench_model, best_of

from recipe_repl.engine import OnnxEngine
from recipe_repl.generation import Request, generate
from recipe_repl.plugins import Plugins
from recipe_repl.settings import Settings

PROMPTS = ["recipe for roast chicken", "recipe for", "recipe for chocolate cake with", "mix the flour"] * 64
TOKENS = 100


def throughput(engine: OnnxEngine, batch_size: int) -> float:
    """Generated tokens per second for all PROMPTS (the stop token banned so every row runs 100 steps)."""
    plugins = Plugins(load_third_party=False)
    settings = Settings(max_tokens=TOKENS, seed=1)
    specs = plugins.processor_specs()
    stop_banned = [*specs, _ban_stop_spec()]
    settings = settings.replace(use=(("ban-stop", ()),))
    t0 = time.perf_counter()
    samples = list(generate(engine, [Request(p, key=i) for i, p in enumerate(PROMPTS)], settings, stop_banned,
                            batch_size=batch_size))
    elapsed = time.perf_counter() - t0
    return sum(len(s.token_ids) for s in samples) / elapsed


def _ban_stop_spec():
    from recipe_repl.sampling import ProcessorSpec, ban_tokens

    return ProcessorSpec("ban-stop", lambda settings, args, vocab: lambda x, ctx: ban_tokens(x, [0]))


def startup_seconds(model: str) -> tuple[float, float]:
    """Best-of-5 wall time of the tool answering one prompt, and of importing onnxruntime + numpy.

    Bytecode caching is allowed and one warm-up run goes first: an installed package has its .pyc
    files, so a run that recompiles every module (PYTHONDONTWRITEBYTECODE) is not what users see.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    tool = [sys.executable, "-m", "recipe_repl", "--model", model, "--max-tokens", "1"]
    floor = [sys.executable, "-c", "import onnxruntime, numpy"]

    def run(cmd: list[str], stdin: bytes) -> None:
        subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=True)

    run(tool, b"recipe for roast\n")  # warm-up: writes the .pyc files
    return best_of(5, lambda: run(tool, b"recipe for roast\n")), best_of(5, lambda: run(floor, b""))


def main() -> None:
    """Print throughput and start-up ratios."""
    path, label = bench_model()
    print(f"model: {path} ({label})")
    engine = OnnxEngine(path)
    t1 = throughput(engine, 1)
    t32 = throughput(engine, 32)
    print(f"batch size  1: {t1:10,.0f} tokens/s")
    print(f"batch size 32: {t32:10,.0f} tokens/s")
    print(f"batch 32 / batch 1: {t32 / t1:.1f}x   (target >= 3x)")
    tool, floor = startup_seconds(str(path))
    print(f"start-up: echo prompt | recipe-repl --max-tokens 1: {tool * 1000:.0f} ms; "
          f"python -c 'import onnxruntime, numpy': {floor * 1000:.0f} ms")
    print(f"start-up ratio: {tool / floor:.2f}x   (target <= 1.5x)")


if __name__ == "__main__":
    main()
