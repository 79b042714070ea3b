"""Built-in subcommands, added through the same `register_cli_commands` hook as plugins' ones:
`generate`, `plugins`, and the lazily imported `train`, `export`, `eval` and `data`."""

from __future__ import annotations

import importlib
import sys
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


@click.command("score")
@click.argument("source", metavar="FILE|-")
@model_options
@click.pass_context
def score_command(ctx: click.Context, /, source: str, **opts: Any) -> None:
    """How likely the model finds each text of FILE (one a line; - reads stdin): perplexity and least likely words.

    Counts as `recipe-repl eval` does (every word after the first, and the stop token), so the
    perplexity over a file of recipes equals eval's on the same recipes.
    """
    from recipe_repl.frontends.batch import BatchFrontend
    from recipe_repl.generate.scoring import corpus_perplexity, score_text
    from recipe_repl.views import render

    texts = _read_texts(source)
    frontend = BatchFrontend(sys.stdout, sys.stderr)
    session = start_session(ctx.find_root().obj, frontend, opts, keep_transcript=False)
    scores = []
    for text in texts:
        scored = score_text(session.engine, text, session.max_prompt_tokens)
        scores.append(scored)
        worst = scored.least_likely(5)
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
    unknown = sum(s.unknown for s in scores)
    frontend.message(f"{len(scores)} text{'s' if len(scores) != 1 else ''}, "
                     f"{sum(len(s.predictions) for s in scores)} predictions, perplexity "
                     f"{corpus_perplexity(scores):,.2f}" + (f" ({unknown} unknown words)" if unknown else ""))


def _read_texts(source: str) -> list[str]:
    """Non-empty lines of a file, or of stdin for '-'."""
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise UserError(f"cannot read {source}: {exc.strerror}") from None
    texts = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not texts:
        raise UserError(f"nothing to score in {'stdin' if source == '-' else source}: one text a line")
    return texts


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
