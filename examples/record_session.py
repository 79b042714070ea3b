"""Record a real recipe-repl session as an SVG picture (the one in the README, docs/session.svg).

It shows what the lecture is about, on a real model through ONNX Runtime: a prompt written at
temperature 1.0 with each word coloured by the model's probability of it (`:heat on`), the table the
least likely word was drawn from (`:why`), the next-word table at 1.0 and 0.2 side by side (`:compare`),
a colder sample and its `:why` (the model's column beside the sampling one), a prompt with a word the model does not know ([UNK]), and choosing words by hand
(`:pick`), with the stop token shown as ⏹ [end]. `--script cells` records the LSTM's own cells
instead (docs/cells.svg): `:cells find`, then one unit over a recipe; `--script saliency` which words
made "cup" likely (docs/saliency.svg): `:saliency` by occlusion and gradient × input.

The REPL is driven exactly as a person would drive it, but through prompt-toolkit pipe input, and a
rich `Console(record=True)` keeps what was shown:

    .venv/bin/python examples/record_session.py --model models/recipes.onnx --out docs/session.svg
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from recipe_repl.base.settings import Settings
from recipe_repl.frontends.repl import ReplFrontend, run_repl
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session import ModelSpec, Session

SCRIPT = [
    ":max 40",
    ":heat on",
    "recipe for roast chicken",
    ":why",
    ":compare 1.0 0.2",
    ":temp 0.2",
    "recipe for chocolate ice cream |",
    ":why",  # at T = 0.2: the model's column beside the sampling one
    "recipe for quokka stew",  # a word no recipe has: the model reads [UNK]
    ":pick 4",
    "1",
    "",
    "s",
]

SALIENCY_SCRIPT = [
    ":max 1",
    "recipe for pancakes | in a bowl, whisk 2 cups of flour, 1 cup of milk",
    ":saliency 16",  # word 16 is "cup"
]

CELLS_SCRIPT = [
    ":cells find c sentence",
    ":max 50",
    ":temp 0.5",
    "recipe for roasted vegetables |",
    ":cells c {unit}",
]


def record(model: Path, out: Path, seed: int = 42, width: int = 100, script: list[str] | None = None) -> str:
    """Run the script on `model`, save the SVG to `out` and return the session's plain text."""
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      highlight=False)
    plugins = Plugins(load_third_party=False)

    def make_session(frontend: ReplFrontend) -> Session:
        return Session(plugins, frontend, ModelSpec(model, provider="cpu"), Settings(seed=seed))

    with create_pipe_input() as keys:
        keys.send_text("".join(line + "\r" for line in script or SCRIPT) + "\x04")
        run_repl(make_session, console=console, input=keys, output=DummyOutput(), history=InMemoryHistory(),
                 echo=True)
    text = console.export_text(clear=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(out), title=f"recipe-repl · {model.name}")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/recipes.onnx"), help="the .onnx model to run")
    parser.add_argument("--out", type=Path, default=Path("docs/session.svg"), help="where to write the SVG")
    parser.add_argument("--seed", type=int, default=42, help="sampler seed, so the recording is reproducible")
    parser.add_argument("--script", choices=("session", "cells", "saliency"), default="session",
                        help="what to record")
    parser.add_argument("--unit", type=int, default=0, help="with --script cells: the memory-cell unit to show")
    args = parser.parse_args()
    if not args.model.is_file():
        print(f"error: no model at {args.model} (pass --model FILE)", file=sys.stderr)
        return 2
    scripts = {"session": SCRIPT, "cells": [line.format(unit=args.unit) for line in CELLS_SCRIPT],
               "saliency": SALIENCY_SCRIPT}
    script = scripts[args.script]
    print(record(args.model, args.out, args.seed, script=script))
    print(f"saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
