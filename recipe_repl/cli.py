"""The `recipe-repl` command: the REPL on a terminal, batch mode on a pipe, and subcommands.

Imports stay light: no TensorFlow ever, no prompt-toolkit unless the REPL starts, ONNX Runtime
only when a model is opened.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from recipe_repl import __version__
from recipe_repl.engine import MAX_THREADS
from recipe_repl.errors import UserError
from recipe_repl.plugins import ENV_NO_PLUGINS, Plugins
from recipe_repl.sanitize import clean

MAX_TOKENS_HELP = (
    "generate at most N tokens; only generated tokens count (the lecture's max_tokens counts the prompt too)"
)


def sampling_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The sampling flags shared by the REPL, batch mode and `generate` (None = not given)."""
    options = [
        click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), help="an .onnx model file"),
        click.option("--vocab", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
                     help="vocabulary file for a model that carries none"),
        click.option("--temperature", "-t", type=float, help="0 = greedy, 1 = the model's own distribution"),
        click.option("--top-k", type=int, help="keep the K most likely words (0 = off)"),
        click.option("--top-p", type=float, help="nucleus sampling threshold (1 = off)"),
        click.option("--min-p", type=float, help="drop words below P × the top word's probability"),
        click.option("--max-tokens", type=int, help=MAX_TOKENS_HELP),
        click.option("--seed", type=int, help="seed for reproducible samples"),
        click.option("--n", "n", type=int, help="samples per prompt"),
        click.option("--no-unk", is_flag=True, default=None, help="never emit [UNK]"),
        click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), help="ONNX Runtime device"),
        click.option("--threads", type=int, help=f"ONNX Runtime threads, 0 (its default) to {MAX_THREADS}"),
        click.option("--json", "json_out", is_flag=True, help="JSON output (JSON Lines in batch mode)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings_from(config: Any, opts: dict[str, Any]) -> Any:
    flags = {
        "temperature": opts.get("temperature"),
        "top_k": opts.get("top_k"),
        "top_p": opts.get("top_p"),
        "min_p": opts.get("min_p"),
        "max_tokens": opts.get("max_tokens"),
        "seed": opts.get("seed"),
        "n": opts.get("n"),
    }
    if opts.get("no_unk"):
        flags["allow_unk"] = False
    base = config.starting_settings()
    return base.replace(**{k: v for k, v in flags.items() if v is not None})


def _model_spec(config: Any, opts: dict[str, Any]) -> Any:
    from recipe_repl.models import DEFAULT_MODEL
    from recipe_repl.session import ModelSpec

    path = opts.get("model") or (Path(os.path.expanduser(config.model)) if config.model else DEFAULT_MODEL)
    if not opts.get("model") and not config.model and not DEFAULT_MODEL.is_file():
        raise UserError(f"the shipped model is missing ({DEFAULT_MODEL}): run `make model` or pass --model FILE")
    provider = opts.get("provider") or config.provider or "auto"
    threads: int = opts["threads"] if opts.get("threads") is not None else (config.threads or 0)
    return ModelSpec(Path(path), provider, threads)


def _make_session(plugins: Plugins, frontend: Any, opts: dict[str, Any], batch_size: int = 32,
                  keep_transcript: bool = True) -> Any:
    from recipe_repl.config import Config
    from recipe_repl.session import Session

    config = Config.load()
    settings = _settings_from(config, opts)
    spec = _model_spec(config, opts)
    engine = None
    if opts.get("vocab"):
        from recipe_repl.engine import OnnxEngine

        engine = OnnxEngine(spec.path, spec.provider, spec.threads, vocab_path=opts["vocab"])
    session = Session(plugins, frontend, spec, settings, config, batch_size, engine, keep_transcript)
    info = session.engine.info  # open the model now: a bad file fails before any prompt
    if spec.provider == "auto" and info.provider == "cpu" and _cuda_offered():
        frontend.message("CUDA is offered but could not be used; running on the CPU", "warning")
    return session


def _cuda_offered() -> bool:
    from recipe_repl.engine import available_providers

    return "CUDAExecutionProvider" in available_providers()


class _SafeHelpFormatter(click.HelpFormatter):
    """`--help` text with plugins' strings sanitized like every other output."""

    def write(self, string: str) -> None:
        """Add text to the help, control and bidi characters escaped (newlines kept)."""
        super().write(clean(string, keep="\n"))


class _SafeContext(click.Context):
    formatter_class = _SafeHelpFormatter


def build_cli(plugins: Plugins) -> click.Group:
    """The click group, with the built-in and plugin subcommands added through the hook."""

    @click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
    @sampling_options
    @click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True,
                  help="prompts generated together in batch mode")
    @click.option("--batch", "force_batch", is_flag=True, help="batch mode even on a terminal")
    @click.option("--no-plugins", is_flag=True, help=f"load built-ins only (or set {ENV_NO_PLUGINS}=1)")
    @click.option("--plugin", "plugin_modules", multiple=True, metavar="MODULE",
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

        ctx.exit(run_repl(lambda frontend: _make_session(plugins, frontend, opts, batch_size)))

    cli.context_class = _SafeContext
    plugins.add_cli_commands(cli)
    for command in cli.commands.values():  # plugins' subcommands print their --help through it too
        if command.context_class is click.Context:
            command.context_class = _SafeContext
    return cli


def run_batch(plugins: Plugins, opts: dict[str, Any], batch_size: int) -> int:
    """Batch mode over stdin."""
    from recipe_repl.batch import BatchFrontend, BatchRunner, read_lines, stderr_progress

    frontend = BatchFrontend(sys.stdout, sys.stderr, json_lines=bool(opts.get("json_out")))
    session = _make_session(plugins, frontend, opts, batch_size, keep_transcript=False)
    progress = stderr_progress()
    try:
        return BatchRunner(session, frontend, progress).run(read_lines(sys.stdin.buffer))
    finally:
        if progress is not None:
            sys.stderr.write("\n")


def _early_plugin_args(argv: list[str]) -> tuple[bool, list[str]]:
    """`--no-plugins` and `--plugin X` must be known before click runs: plugins add subcommands."""
    no_plugins = "--no-plugins" in argv or os.environ.get(ENV_NO_PLUGINS, "") not in ("", "0")
    modules = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            modules.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            modules.append(arg.split("=", 1)[1])
    return no_plugins, modules


def _report(message: str) -> None:
    _stderr_line(f"warning: {message}")


def _stderr_line(text: str) -> None:
    """One sanitized line on stderr; if stderr itself is gone there is nobody left to tell."""
    try:
        sys.stderr.write(clean(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _click_error(exc: click.ClickException) -> str:
    """A click usage error as one line, pointing at the right --help."""
    text = f"error: {exc.format_message()}"
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text += f" (see {ctx.command_path} --help)"
    return text


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn user errors into one line and exit status 2.

    Output that could not be written (a full disk, a closed stdout) is one line and exit status 1.
    """
    _ensure_std_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    no_plugins, modules = _early_plugin_args(args)
    code = 0
    try:
        plugins = Plugins(load_third_party=not no_plugins, modules=modules, report=_report)
        cli = build_cli(plugins)
        result = cli.main(args=args, prog_name="recipe-repl", standalone_mode=False, obj=plugins)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        _stderr_line(_click_error(exc))
        code = exc.exit_code
    except UserError as exc:
        _stderr_line(f"error: {exc}")
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        _stderr_line("")  # end a half-written line (batch mode's progress count) first
        _stderr_line("interrupted")
        code = 130
    except BrokenPipeError:
        code = 0
    except OSError as exc:
        code = _os_error(exc)
    sys.exit(_finish_stdout(code))


def _ensure_std_streams() -> None:
    """Started with a standard stream closed (`>&-`): keep its file descriptor taken, so no file we open
    lands on it, and make writing to a closed stdout fail like any other lost output."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        try:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        except OSError:
            pass
        if fd == 0:
            sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        elif fd == 1:
            sys.stdout = io.TextIOWrapper(io.BufferedWriter(_ClosedOutput()), encoding="utf-8")
        else:
            sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115


class _ClosedOutput(io.RawIOBase):
    """Where stdout goes when it was closed at start: every write fails, as it would on the lost descriptor."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _stdout_error() -> OSError | None:
    """The error flushing stdout gives now, or None if it works (a broken pipe counts as working)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return None
    except OSError as exc:
        return exc
    except (ValueError, AttributeError):
        return None
    return None


# What a failed write to an open stream raises: our own file writes turn these into UserErrors, so an
# unhandled one without a file name is the output (rich and click write to stdout directly).
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF})


def _os_error(exc: OSError) -> int:
    """An OSError nobody turned into a UserError: lost output, or one line naming the file."""
    if (exc.filename is None and exc.errno in _WRITE_ERRNOS) or _stdout_error() is not None:
        _stderr_line(f"error: cannot write the output: {exc.strerror or exc}")
        return 1
    where = f": {exc.filename}" if exc.filename else ""
    _stderr_line(f"error: {exc.strerror or exc}{where}")
    return 1


def _finish_stdout(code: int) -> int:
    """Flush stdout; if that fails the output is lost: say so and exit non-zero (not for a closed pipe)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `| head -1` closed the pipe: flushing again at exit would raise again
        _discard_stdout()
    except (OSError, ValueError) as exc:
        if code == 0:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            _stderr_line(f"error: cannot write the output: {reason}")
            code = 1
        _discard_stdout()
    return code


def _discard_stdout() -> None:
    """Point stdout at devnull so that the interpreter's own flush at exit finds nothing to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
