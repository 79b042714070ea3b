"""Which memory-cell unit carries the title? Hold each unit at 0 in turn (as `:ablate c K` does) and measure
how much of the difference between two titles' next-word tables is left.

The difference is the Jensen–Shannon divergence between the model's own next-word distributions
after the two prompts; a unit whose ablation shrinks it most carries what the title does to the
first word of the directions. Uses the runtime's NumPy LSTM (`recipe_repl.model.numpy_lstm`):

    .venv/bin/python examples/title_units.py --model models/recipes.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from recipe_repl.generate.lstm_model import lstm_model
from recipe_repl.model.engine import OnnxEngine
from recipe_repl.model.numpy_lstm import Intervention, forward, log_softmax


def js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (nats)."""
    m = (p + q) / 2
    return float(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/recipes.onnx"))
    parser.add_argument("--a", default="recipe for chocolate cake |")
    parser.add_argument("--b", default="recipe for roast chicken |")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    engine = OnnxEngine(args.model, provider="cpu")
    model = lstm_model(engine)
    a, b = (np.array([engine.vocab.encode(t)]) for t in (args.a, args.b))

    def tables(held: Intervention | None) -> tuple[np.ndarray, np.ndarray]:
        def last(tokens: np.ndarray) -> np.ndarray:
            run = forward(model.weights, tokens, intervention=held)
            assert run.logits is not None
            return np.exp(log_softmax(run.logits[0, -1]))
        return last(a), last(b)

    base = js(*tables(None))
    left = sorted((js(*tables(Intervention("c", ((unit, 0.0),)))), unit) for unit in range(model.units))
    print(f"JS divergence between the tables after “{args.a}” and “{args.b}”: {base:.4f}")
    for value, unit in left[:args.top]:
        print(f"  :ablate c {unit:<4} leaves {value:.4f} ({value / base:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
