"""ONNX Runtime's threads and spinning at batch 1 and batch 32: wall time, CPU time and tokens/s.

Not part of `make bench`; the measurements behind `engine.auto_threads` (1 thread in the REPL, a
thread per core with ONNX Runtime's spinning in batch mode and `generate`):

    .venv/bin/python benchmarks/bench_threads.py

Each setting generates the same prompts (the stop token banned, so every row runs TOKENS steps);
best wall time of three interleaved rounds, with the CPU time of that round.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_generation import PROMPT, TOKENS, _no_stop  # noqa: E402
from common import bench_model  # noqa: E402

from recipe_repl.generate.loop import Request, generate  # noqa: E402
from recipe_repl.model.engine import OnnxEngine  # noqa: E402

ROUNDS = 3
SETTINGS: dict[str, dict[str, object]] = {
    "a thread per core, spinning (ORT's default; batch)": {"threads": 0},
    "a thread per core, asleep when idle": {"threads": 0, "spinning": False},
    "1 thread (the REPL)": {"threads": 1},
    "2 threads, asleep when idle": {"threads": 2, "spinning": False},
}


def main() -> None:
    """Print wall, CPU/wall and tokens/s for every setting at batch 1 and batch 32."""
    path, label = bench_model()
    print(f"model: {path} ({label}); {TOKENS} tokens a prompt")
    specs, settings = _no_stop()
    engines = {name: OnnxEngine(path, **kw) for name, kw in SETTINGS.items()}  # type: ignore[arg-type]
    for batch, prompts in ((1, 20), (32, 128)):
        reqs = [Request(PROMPT, key=i) for i in range(prompts)]
        best: dict[str, tuple[float, float]] = {}
        for _ in range(ROUNDS):
            for name, engine in engines.items():
                w0, c0 = time.perf_counter(), time.process_time()
                list(generate(engine, reqs, settings, specs, batch_size=batch))
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
        print(f"batch {batch} ({prompts} prompts):")
        for name, (wall, cpu) in best.items():
            print(f"  {name:48s} wall {wall:5.2f} s  CPU {cpu / wall:4.2f}x wall  "
                  f"{prompts * TOKENS / wall:9,.0f} tokens/s")


if __name__ == "__main__":
    main()
