"""The `recipe-repl` command: the REPL on a terminal, batch mode on a pipe, and subcommands.

Imports stay light: no TensorFlow ever, no prompt-toolkit unless the REPL starts, ONNX Runtime
only when a model is opened.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from recipe_repl import __version__
from recipe_repl.errors import UserError
from recipe_repl.plugin_loader import (
    ENV_NO_PLUGINS,
    NO_PLUGINS_FLAG,
    PLUGIN_FLAG,
    no_plugins_requested,
    plugin_modules_requested,
)
from recipe_repl.plugins import Plugins
from recipe_repl.startup import session_options, start_session


def build_cli(plugins: Plugins) -> click.Group:
    """The click group, with the built-in and plugin subcommands added through the hook."""

    @click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
    @session_options
    @click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True,
                  help="prompts generated together in batch mode")
    @click.option("--batch", "force_batch", is_flag=True, help="batch mode even on a terminal")
    # --no-plugins and --plugin are read by `main` before click runs (plugins add subcommands); they
    # are declared here for --help and so that click accepts them.
    @click.option(NO_PLUGINS_FLAG, is_flag=True, help=f"load built-ins only (or set {ENV_NO_PLUGINS}=1)")
    @click.option(PLUGIN_FLAG, "plugin_modules", multiple=True, metavar="MODULE",
                  help="also load this plugin module or .py file (repeatable)")
    @click.version_option(__version__, prog_name="recipe-repl")
    @click.pass_context
    def cli(ctx: click.Context, batch_size: int, force_batch: bool, no_plugins: bool,
            plugin_modules: tuple[str, ...], **opts: Any) -> None:
        """Write recipes with an LSTM: an interactive REPL on a terminal, batch mode on a pipe.

        Type a prompt such as "recipe for roast chicken"; type :help for the commands.
        In batch mode each input line is a prompt, or a :command applied to the prompts after it.
        """
        if ctx.invoked_subcommand is not None:
            return
        if force_batch or not sys.stdin.isatty():
            ctx.exit(run_batch(plugins, opts, batch_size))
        from recipe_repl.repl import run_repl

        ctx.exit(run_repl(lambda frontend: start_session(plugins, frontend, opts, batch_size)))

    plugins.add_cli_commands(cli)
    return cli


def run_batch(plugins: Plugins, opts: dict[str, Any], batch_size: int) -> int:
    """Batch mode over stdin."""
    from recipe_repl.batch import BatchFrontend, BatchRunner, read_lines, stderr_progress

    frontend = BatchFrontend(sys.stdout, sys.stderr, json_lines=bool(opts.get("json_out")))
    session = start_session(plugins, frontend, opts, batch_size)  # keeps a bounded transcript for :save
    progress = stderr_progress()
    try:
        return BatchRunner(session, frontend, progress).run(read_lines(sys.stdin.buffer))
    finally:
        if progress is not None:
            sys.stderr.write("\n")


def _report(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn user errors into one line and exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = 0
    try:
        plugins = Plugins(load_third_party=not no_plugins_requested(args), modules=plugin_modules_requested(args),
                          report=_report)
        cli = build_cli(plugins)
        result = cli.main(args=args, prog_name="recipe-repl", standalone_mode=False, obj=plugins)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        sys.stderr.write("\ninterrupted\n")
        code = 130
    except BrokenPipeError:
        code = 0
    _close_stdout_quietly()
    sys.exit(code)


def _close_stdout_quietly() -> None:
    """After `| head -1` closed the pipe, flushing stdout would raise again at exit: point it at devnull."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
