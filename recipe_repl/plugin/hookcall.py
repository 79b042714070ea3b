"""Calling plugins' hook implementations, each on its own: the one place plugin code is called from.

An implementation gets only the arguments it declares (pluggy lets it take any subset of a hook's
arguments); one that raises is reported in one line naming it, the first time only, and the others
still run. Built-ins are called first, so that a plugin's clash, not the built-in, is what gets reported.
"""

from __future__ import annotations

import io
import reprlib
import sys
from collections.abc import Callable, Collection
from typing import IO, Any

import pluggy

from recipe_repl.base.sanitize import clean

BUILTIN = "builtin"

_trace_repr = reprlib.Repr()
_trace_repr.maxstring = _trace_repr.maxother = 40


def is_builtin(plugin: str) -> bool:
    """Whether a plugin name is one of recipe-repl's own: `builtin`, or `builtin:MODULE` once loaded."""
    return plugin == BUILTIN or plugin.startswith(BUILTIN + ":")


def one_line(exc: BaseException, bare: bool = False) -> str:
    """An exception as one line (`Type: first line`, or the first line alone when `bare`)."""
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if isinstance(exc, pluggy.PluginValidationError) and len(text) > 1:
        text = ["; ".join(text[1:])]  # pluggy's first line only names the plugin and the hook
    if bare and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _PluginStdout(io.TextIOBase):
    """Where a plugin's `print()` goes: stderr, line by line, sanitized (stdout carries samples only)."""

    MAX_LINE = 4096  # a plugin writing without newlines is cut into lines of this length

    def __init__(self, err: IO[str]) -> None:
        super().__init__()
        self._err, self._partial = err, ""

    def writable(self) -> bool:
        """Always."""
        return True

    def write(self, text: str) -> int:
        """Keep a partial line; pass each full line on, escaped."""
        self._partial += str(text)
        if "\n" in self._partial or len(self._partial) > self.MAX_LINE:
            *lines, self._partial = self._partial.split("\n")
            while len(self._partial) > self.MAX_LINE:
                lines.append(self._partial[: self.MAX_LINE])
                self._partial = self._partial[self.MAX_LINE :]
            for line in lines:
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        """Pass a partial line on (the plugin's code has returned)."""
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def _emit(self, line: str) -> None:
        try:
            self._err.write(clean(line) + "\n")
            self._err.flush()
        except (OSError, ValueError):
            pass  # stderr is gone: a plugin's chatter is not worth failing for


class plugin_stdout:  # noqa: N801 - used as `with plugin_stdout():`, like contextlib's redirect_stdout
    """Run plugin code with `sys.stdout` sent to stderr, sanitized, a line at a time.

    A plugin's `print()` must not break the JSON Lines stream on stdout nor send raw escapes to the
    terminal. Every place that calls third-party code wraps the call in this (the registry wraps
    commands, completers, processors, loaders and features when they are registered; `HookCaller`
    wraps hook calls; the loader wraps importing a plugin). Cheap (a class, not a generator): a
    listener is called at every token. Nested uses keep the outer redirection.
    """

    __slots__ = ("_real", "_proxy")

    def __enter__(self) -> None:
        self._real = sys.stdout
        self._proxy: _PluginStdout | None = None
        if not isinstance(self._real, _PluginStdout):
            self._proxy = _PluginStdout(sys.stderr)
            sys.stdout = self._proxy

    def __exit__(self, *exc: object) -> None:
        if self._proxy is not None:
            sys.stdout = self._real
            self._proxy.flush()


def plugin_failure(exc: BaseException) -> bool:
    """Whether an exception from plugin code is the plugin's failure to report (anything but Ctrl-C).

    SystemExit, GeneratorExit and other BaseExceptions from a plugin must not end the session:
    they are reported in one line naming the plugin, like any exception. Ctrl-C stops what runs.
    """
    return not isinstance(exc, KeyboardInterrupt)


class HookCaller:
    """Every implementation of one hook, called each on its own with only the arguments it declares.

    `report` gets one line per failing plugin, once for the life of this object (so a listener that
    raises at every word is reported once per generation); `trace`, when given, one line per call.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        hook: str,
        report: Callable[[str], None],
        trace: Callable[[str], None] | None = None,
    ) -> None:
        impls = [i for i in getattr(pm.hook, hook).get_hookimpls() if not (i.wrapper or i.hookwrapper)]
        self.hook = hook
        self._impls = {i.plugin_name: i for i in sorted(impls, key=lambda i: not is_builtin(i.plugin_name))}
        self._report = report
        self._trace = trace
        self._reported: set[str] = set()

    @property
    def plugins(self) -> list[str]:
        """The plugins implementing the hook, built-ins first."""
        return list(self._impls)

    def __bool__(self) -> bool:
        return bool(self._impls)

    def call(self, skip: Collection[str] = (), note: str = "", **kwargs: Any) -> list[str]:
        """Call every implementation (but those of the plugins in `skip`); return the plugins that raised.

        `note` is added to a failure's line (say, what happens to that plugin now).
        """
        return [p for p in self._impls if p not in skip and not self.call_one(p, note, **kwargs)]

    def call_one(self, plugin: str, note: str = "", **kwargs: Any) -> bool:
        """Call one plugin's implementation; False (reported the first time) if it raised."""
        impl = self._impls[plugin]
        args = {k: v for k, v in kwargs.items() if k in impl.argnames or k in impl.kwargnames}
        if self._trace is not None:
            shown = ", ".join(f"{k}={_trace_repr.repr(v)}" if not callable(v) else k for k, v in args.items())
            self._trace(f"{plugin}.{self.hook}({shown})")
        try:
            if is_builtin(plugin):
                impl.function(**args)
            else:
                with plugin_stdout():
                    impl.function(**args)
        except BaseException as exc:  # a plugin's bug (or sys.exit) must not stop the tool; Ctrl-C does
            if not plugin_failure(exc):
                raise
            if plugin not in self._reported:
                self._reported.add(plugin)
                self._report(f"plugin {plugin} failed in {self.hook}: {one_line(exc)}{note}")
            return False
        return True
