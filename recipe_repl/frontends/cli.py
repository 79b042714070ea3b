"""The `recipe-repl` command: the REPL on a terminal, batch mode on a pipe, and subcommands.

Imports stay light: no TensorFlow ever, no prompt-toolkit unless the REPL starts, ONNX Runtime
only when a model is opened.
"""

from __future__ import annotations

import errno
import gc
import io
import os
import sys
from typing import Any

import click

from recipe_repl import __version__
from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean
from recipe_repl.frontends.startup import session_options, start_session
from recipe_repl.plugin.loader import (
    ENV_NO_PLUGINS,
    NO_PLUGINS_FLAG,
    PLUGIN_FLAG,
    no_plugins_requested,
    plugin_modules_requested,
)
from recipe_repl.plugin.manager import Plugins


class _SafeHelpFormatter(click.HelpFormatter):
    """`--help` text with plugins' strings sanitized like every other output."""

    def write(self, string: str) -> None:
        """Add text to the help, control and bidi characters escaped (newlines kept)."""
        super().write(clean(string, keep="\n"))


class _SafeContext(click.Context):
    formatter_class = _SafeHelpFormatter


class _PipeClosed(Exception):
    """The reader of stdout left (`| head -1`): not an OSError, so that click does not turn it into exit 1."""


class _Group(click.Group):
    """The top-level group: a closed pipe anywhere below it (batch mode, `generate`, `score`, `data show`,
    a plugin's subcommand) ends the run quietly with status 0, as `git log | head -1` does."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a broken pipe becomes `_PipeClosed`."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None


def build_cli(plugins: Plugins) -> click.Group:
    """The click group, with the built-in and plugin subcommands added through the hook."""

    @click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
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
    def cli(ctx: click.Context, /, batch_size: int, force_batch: bool, no_plugins: bool,
            plugin_modules: tuple[str, ...], **opts: Any) -> None:
        """Write recipes with an LSTM: an interactive REPL on a terminal, batch mode on a pipe.

        Type a prompt such as "recipe for roast chicken"; type :help for the commands.
        In batch mode each input line is a prompt, or a :command applied to the prompts after it.
        """
        if ctx.invoked_subcommand is not None:
            return
        if force_batch or not sys.stdin.isatty():
            ctx.exit(run_batch(plugins, opts, batch_size))
        from recipe_repl.frontends.repl import run_repl

        ctx.exit(run_repl(lambda frontend: start_session(plugins, frontend, opts, batch_size)))

    cli.context_class = _SafeContext
    plugins.add_cli_commands(cli)
    for command in cli.commands.values():  # plugins' subcommands print their --help through it too
        if command.context_class is click.Context:
            command.context_class = _SafeContext
    return cli


def run_batch(plugins: Plugins, opts: dict[str, Any], batch_size: int) -> int:
    """Batch mode over stdin."""
    from recipe_repl.frontends.batch import BatchFrontend, BatchRunner, read_lines, stderr_progress

    frontend = BatchFrontend(sys.stdout, sys.stderr, json_lines=bool(opts.get("json_out")))
    session = start_session(plugins, frontend, opts, batch_size)  # keeps a bounded transcript for :save
    progress = stderr_progress()
    try:
        return BatchRunner(session, frontend, progress).run(read_lines(sys.stdin.buffer))
    finally:
        if progress is not None:
            sys.stderr.write("\n")


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
        _stderr_line(_click_error(exc))
        code = exc.exit_code
    except UserError as exc:
        _stderr_line(f"error: {exc}")
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        _stderr_line("")  # end a half-written line (batch mode's progress count) first
        _stderr_line("interrupted")
        code = 130
    except (BrokenPipeError, _PipeClosed):
        code = 0
        _discard_stdout()
    except OSError as exc:
        code = _os_error(exc)
    except Exception as exc:  # the last resort: a bug, ours or a plugin's, is one line and a report on disk
        code = _internal_error(exc, args)
    code = _finish_stdout(code)
    # Nothing is left to collect: frozen, the interpreter's final garbage collection skips the
    # session's objects (tens of ms of every run on a 2-core machine; atexit handlers still run).
    gc.freeze()
    sys.exit(code)


def _internal_error(exc: Exception, argv: list[str]) -> int:
    """One line saying what went wrong and where the full report (the traceback) was written; exit status 1."""
    import traceback

    report = "".join(traceback.format_exception(exc))
    where = _write_report(report, argv)
    text = str(exc).strip().splitlines()
    what = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    place = f"the full report is in {where}" if where else "no report could be written (the state folder and the " \
                                                              "temporary folder are not writable)"
    _stderr_line(f"error: internal error ({what[:300]}); {place}: please include it when you report this")
    return 1


def _write_report(report: str, argv: list[str]) -> str:
    """Write a crash report into the state folder (else the temporary folder); its path, or "" if neither works."""
    import platform
    import tempfile
    import time
    from pathlib import Path

    from recipe_repl.base.config import state_dir

    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    body = (f"recipe-repl {__version__} on Python {platform.python_version()} ({platform.platform()})\n"
            f"arguments: {argv!r}\n\n{report}")
    for folder in (state_dir, lambda: Path(tempfile.gettempdir())):
        try:
            path = folder()
            path.mkdir(parents=True, exist_ok=True)
            target = path / name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a report may hold paths: private
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(body)
            return str(target)
        except Exception:  # noqa: BLE001 - any folder that does not work: try the next
            continue
    return ""


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
