"""Built-in subcommands, added through the same `register_cli_commands` hook as plugins' ones:
`generate`, `plugins`, and the lazily imported `train`, `export`, `eval` and `data`."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from recipe_repl.errors import UserError
from recipe_repl.generation import StopReason
from recipe_repl.hookspecs import hookimpl
from recipe_repl.sanitize import dumps
from recipe_repl.startup import session_options, start_session


@click.command()
@click.argument("prompt")
@session_options
@click.pass_context
def generate(ctx: click.Context, prompt: str, **opts: Any) -> None:
    """Write a recipe that starts with PROMPT, e.g. recipe-repl generate "recipe for roast"."""
    from recipe_repl.batch import BatchFrontend

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

    from recipe_repl.render import print_safe

    table = Table(title="recipe-repl plugins")
    for col in ("plugin", "version", "source", "registered"):
        table.add_column(col)
    for info in infos:
        parts = [
            ", ".join(f":{c}" for c in info.commands),
            ", ".join(info.processors),
            ", ".join(f"loader {n}" for n in info.loaders),
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
    """generate, plugins, train, export, eval, data."""
    cli.add_command(generate)
    cli.add_command(plugins_command)
    for module, attr in _LAZY:
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue  # an installation without that subpackage simply lacks the subcommand
        cli.add_command(command)
