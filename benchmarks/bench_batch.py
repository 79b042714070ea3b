"""Batch mode and start-up: tokens/s at batch 32 over batch 1, and the time to the first word and the first prompt.

- Throughput: 256 prompts × 100 tokens (the stop token banned, so every row runs 100 steps) at batch
  sizes 1 and 32, each with the threads the tool uses for it (`engine.auto_threads`: 1 thread for
  one row at a time, ONNX Runtime's default for batch mode); median of three in one run.
- Piped start-up: `echo prompt | recipe-repl --max-tokens 1` against the honest floor, a Python that
  imports onnxruntime and numpy and creates an InferenceSession on the same model. Best of 7,
  interleaved, bytecode caches allowed (an installed package has its .pyc files) after a warm-up.
- Interactive start-up: the REPL on a pseudo-terminal (pexpect) until its first prompt, against the
  same floor plus `import prompt_toolkit, rich`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, bench_model, verdict

from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import Request, generate
from recipe_repl.generate.sampling import ProcessorSpec, ban_tokens
from recipe_repl.model.engine import OnnxEngine, auto_threads
from recipe_repl.plugin.manager import Plugins

PROMPTS = ["recipe for roast chicken", "recipe for", "recipe for chocolate cake with", "mix the flour"] * 64
TOKENS = 100
RUNS = 7


def throughput(engine: OnnxEngine, batch_size: int) -> float:
    """Generated tokens per second for all PROMPTS (the stop token banned so every row runs 100 steps)."""
    specs = [*Plugins(load_third_party=False).processor_specs(),
             ProcessorSpec("ban-stop", lambda settings, args, vocab: lambda x, ctx: ban_tokens(x, [0]))]
    settings = Settings(max_tokens=TOKENS, seed=1, use=(("ban-stop", ()),))
    t0 = time.perf_counter()
    samples = list(generate(engine, [Request(p, key=i) for i, p in enumerate(PROMPTS)], settings, specs,
                            batch_size=batch_size))
    elapsed = time.perf_counter() - t0
    return sum(len(s.token_ids) for s in samples) / elapsed


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    env.pop("RECIPE_REPL_NO_PLUGINS", None)
    return env


def startup_seconds(model: str) -> tuple[float, float]:
    """Best-of-RUNS wall time of the tool answering one prompt, and of the floor (imports + session)."""
    env = _env()
    tool = [sys.executable, "-m", "recipe_repl", "--model", model, "--max-tokens", "1"]
    floor = [sys.executable, "-c", "import onnxruntime, numpy; "
             f"onnxruntime.InferenceSession({model!r}, providers=['CPUExecutionProvider'])"]

    def run(cmd: list[str], stdin: bytes) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=True)
        return time.perf_counter() - t0

    run(tool, b"recipe for roast\n")  # warm-up: writes the .pyc files
    run(floor, b"")
    best_tool = best_floor = float("inf")
    for _ in range(RUNS):
        best_tool = min(best_tool, run(tool, b"recipe for roast\n"))
        best_floor = min(best_floor, run(floor, b""))
    return best_tool, best_floor


def import_breakdown(model: str) -> tuple[dict[str, float], float]:
    """Milliseconds of import time per top-level package that the tool spends beyond the floor
    (`python -X importtime`, self times summed per package; best of 3 each), and the floor's total."""
    env = _env()
    tool = [sys.executable, "-X", "importtime", "-m", "recipe_repl", "--model", model, "--max-tokens", "1"]
    floor = [sys.executable, "-X", "importtime", "-c", "import onnxruntime, numpy; "
             f"onnxruntime.InferenceSession({model!r}, providers=['CPUExecutionProvider'])"]

    def per_package(cmd: list[str], stdin: bytes) -> dict[str, float]:
        best: dict[str, float] = {}
        for _ in range(3):
            err = subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=True).stderr.decode()
            got: dict[str, float] = {}
            for line in err.splitlines():
                parts = line.split("|")
                if len(parts) == 3 and parts[0].startswith("import time:") and parts[0].split(":")[1].strip().isdigit():
                    name = parts[2].strip().split(".")[0]
                    got[name] = got.get(name, 0.0) + int(parts[0].split(":")[1]) / 1000
            for name, ms in got.items():
                best[name] = min(best.get(name, ms), ms)
        return best

    ours, base = per_package(tool, b"recipe for roast\n"), per_package(floor, b"")
    extra = {name: ms - base.get(name, 0.0) for name, ms in ours.items()}
    return dict(sorted(extra.items(), key=lambda kv: -kv[1])), sum(base.values())


def first_prompt_seconds(model: str) -> tuple[float, float] | None:
    """Best-of-RUNS time to the REPL's first prompt on a pseudo-terminal, and of its floor; None without pexpect."""
    try:
        import pexpect
    except ImportError:
        return None
    env = _env() | {"TERM": "dumb", "COLUMNS": "100", "LINES": "30", "PROMPT_TOOLKIT_NO_CPR": "1"}
    floor = [sys.executable, "-c", "import onnxruntime, numpy, prompt_toolkit, rich; "
             f"onnxruntime.InferenceSession({model!r}, providers=['CPUExecutionProvider'])"]

    def repl() -> float:
        t0 = time.perf_counter()
        child = pexpect.spawn(sys.executable, ["-m", "recipe_repl", "--model", model], env=env, timeout=60,
                              encoding="utf-8", dimensions=(30, 100))
        child.expect("› ")
        took = time.perf_counter() - t0
        child.sendline(":quit")
        child.expect(pexpect.EOF)
        return took

    def bare() -> float:
        t0 = time.perf_counter()
        subprocess.run(floor, capture_output=True, env=env, check=True)
        return time.perf_counter() - t0

    repl()
    best_repl = best_floor = float("inf")
    for _ in range(RUNS):
        best_repl, best_floor = min(best_repl, repl()), min(best_floor, bare())
    return best_repl, best_floor


def main() -> None:
    """Print throughput and start-up ratios with their targets."""
    path, label = bench_model()
    print(f"model: {path} ({label})")
    one = OnnxEngine(path, threads=auto_threads(interactive=True))
    many = OnnxEngine(path, threads=auto_threads(interactive=False))
    t1, t32 = [], []
    for _ in range(3):
        t1.append(throughput(one, 1))
        t32.append(throughput(many, 32))
    m1, m32 = statistics.median(t1), statistics.median(t32)
    print(f"batch size  1 ({auto_threads(interactive=True)} thread):       {m1:10,.0f} tokens/s (median of 3)")
    print(f"batch size 32 (a thread per core): {m32:10,.0f} tokens/s (median of 3)")
    print(f"batch 32 / batch 1: {m32 / m1:.1f}x   {verdict(m32 / m1, 5)}")

    tool, floor = startup_seconds(str(path))
    print(f"start-up: echo prompt | recipe-repl --max-tokens 1: {tool * 1000:.0f} ms; floor (import onnxruntime, "
          f"numpy + InferenceSession on the model): {floor * 1000:.0f} ms")
    print(f"piped start-up over the floor: {tool / floor:.2f}x   {verdict(tool / floor, 1.15, higher_is_better=False)}")
    extra, _ = import_breakdown(str(path))
    top = ", ".join(f"{name} {ms:.0f}" for name, ms in list(extra.items())[:8] if ms >= 0.5)
    print(f"  imports beyond the floor's (python -X importtime, ms): {sum(extra.values()):.0f} in all; {top}")
    first = first_prompt_seconds(str(path))
    if first is None:
        print("interactive start-up: not measured (pexpect is in the dev extra)")
    else:
        repl, bare = first
        print(f"interactive start-up, time to the first prompt on a terminal: {repl * 1000:.0f} ms; floor + "
              f"import prompt_toolkit, rich: {bare * 1000:.0f} ms; {repl / bare:.2f}x (no target)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
