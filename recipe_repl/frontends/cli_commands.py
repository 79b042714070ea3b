"""Built-in subcommands, added through the same `register_cli_commands` hook as plugins' ones:
`generate`, `plugins`, and the lazily imported `train`, `export`, `eval` and `data`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean, dumps
from recipe_repl.frontends.startup import model_options, session_options, start_session
from recipe_repl.generate.loop import StopReason
from recipe_repl.plugin.hookspecs import hookimpl


@click.command()
@click.argument("prompt")
@session_options
@click.pass_context
def generate(ctx: click.Context, /, prompt: str, **opts: Any) -> None:
    """Write a recipe that starts with PROMPT, e.g. recipe-repl generate "recipe for roast"."""
    from recipe_repl.frontends.batch import BatchFrontend

    plugins = ctx.find_root().obj
    frontend = BatchFrontend(sys.stdout, sys.stderr, json_lines=bool(opts.get("json_out")))
    if not prompt.strip():
        raise UserError("the prompt is empty: give the model some words to start from, e.g. \"recipe for\"")
    session = start_session(plugins, frontend, opts, keep_transcript=False)
    samples = session.prompt(prompt)
    if not opts.get("json_out"):
        for s in samples:
            frontend.message(f"[{len(s.token_ids)} tokens · {s.stop_reason.value}]")
    if any(s.stop_reason == StopReason.INTERRUPTED for s in samples):
        # Ctrl-C ended generation: the finished samples are out, but the run did not complete.
        frontend.message("interrupted")
        ctx.exit(130)
    if any(s.stop_reason == StopReason.NOT_FINITE for s in samples):
        ctx.exit(1)  # the session said at which step and word the model's numbers broke


@click.command("score")
@click.argument("source", metavar="FILE|-")
@model_options
@click.pass_context
def score_command(ctx: click.Context, /, source: str, **opts: Any) -> None:
    """How likely the model finds each text of FILE (one a line; - reads stdin): perplexity and least likely words.

    Counts as `recipe-repl eval` does (every word after the first, and the stop token), so the
    perplexity over a file of recipes equals eval's on the same recipes.
    """
    import math

    from recipe_repl.frontends.batch import BatchFrontend
    from recipe_repl.generate.scoring import score_text
    from recipe_repl.views import render

    frontend = BatchFrontend(sys.stdout, sys.stderr)
    session = start_session(ctx.find_root().obj, frontend, opts, keep_transcript=False)
    name = "stdin" if source == "-" else source
    texts = predictions = unknown = 0
    nll = 0.0  # running sums: the texts stream through, one at a time, whatever the file's size
    for text in _texts(source):
        texts += 1
        scored = score_text(session.engine, text, session.max_prompt_tokens, where=f"in text {texts} of {name}")
        worst = scored.least_likely(5)
        nll += scored.nll
        predictions += len(scored.predictions)
        unknown += scored.unknown
        if opts.get("json_out"):
            record = {"text": text, "tokens": scored.words, "token_probs": [None if p is None else round(p, 6)
                                                                          for p in scored.probs],
                      "stop_prob": round(scored.stop_prob, 6), "perplexity": scored.perplexity,
                      "perplexity_without_stop": scored.perplexity_without_stop,
                      "predictions": len(scored.predictions), "unknown": scored.unknown,
                      "least_likely": [{"position": k + 1, "word": w, "prob": round(p, 6)} for k, w, p in worst]}
            sys.stdout.write(dumps(record) + "\n")
        else:
            least = ", ".join(f"{w} {render.percent(p)}" for _, w, p in worst)
            sys.stdout.write(clean(f"{scored.perplexity:10.2f}  {text}   (least likely: {least})") + "\n")
    if not texts:
        raise UserError(f"nothing to score in {name}: one text a line")
    frontend.message(f"{texts} text{'s' if texts != 1 else ''}, {predictions} predictions, perplexity "
                     f"{math.exp(nll / predictions):,.2f}" + (f" ({unknown} unknown words)" if unknown else ""))


def _texts(source: str) -> Iterator[str]:
    """Non-empty lines of a file, or of stdin for '-', streamed through the one bounded reader."""
    from recipe_repl.base import reading

    if source == "-":
        lines = reading.stream_lines(sys.stdin.buffer, "stdin", reading.SCORE_TEXTS)
    else:
        lines = reading.lines(source, reading.SCORE_TEXTS)
    for line in lines:
        if line.strip():
            yield line.strip()


@click.command("plugins")
@click.option("--json", "json_out", is_flag=True, help="machine-readable output")
@click.pass_context
def plugins_command(ctx: click.Context, json_out: bool) -> None:
    """List loaded plugins with their version and what each registered."""
    plugins = ctx.find_root().obj
    infos = plugins.listing()
    if json_out:
        click.echo(dumps([i.as_dict() for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    from recipe_repl.views.render import print_safe

    table = Table(title="recipe-repl plugins")
    for col in ("plugin", "version", "source", "registered"):
        table.add_column(col)
    for info in infos:
        parts = [
            ", ".join(f":{c}" for c in info.commands),
            ", ".join(info.processors),
            ", ".join(f"loader {n}" for n in info.loaders),
            ", ".join(f"feature {n}" for n in info.features),
            ", ".join(f"recipe-repl {c}" for c in info.cli_commands),
            ", ".join(h for h in info.hooks if h.startswith("on_")),
        ]
        table.add_row(info.name, info.version or "-", info.source, "; ".join(p for p in parts if p) or "-")
    print_safe(Console(highlight=False), table)  # problems were already reported on stderr while loading


# The heavy subcommands live in subpackages that import TensorFlow only when they run.
_LAZY = (
    ("recipe_repl.train.commands", "train_command"),
    ("recipe_repl.export.commands", "export_command"),
    ("recipe_repl.export.commands", "eval_command"),
    ("recipe_repl.train.data_commands", "data_command"),
)


@hookimpl
def register_cli_commands(cli: Any) -> None:
    """generate, score, plugins, train, export, eval, data."""
    cli.add_command(generate)
    cli.add_command(score_command)
    cli.add_command(plugins_command)
    for module, attr in _LAZY:
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue  # an installation without that subpackage simply lacks the subcommand
        cli.add_command(command)
