"""Calling plugins' hook implementations, each on its own: the one place plugin code is called from.

An implementation gets only the arguments it declares (pluggy lets it take any subset of a hook's
arguments); one that raises is reported in one line naming it, the first time only, and the others
still run. Built-ins are called first, so that a plugin's clash, not the built-in, is what gets reported.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Collection
from typing import Any

import pluggy

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
            impl.function(**args)
        except (Exception, SystemExit) as exc:  # a plugin's bug (or sys.exit) must not stop the tool; Ctrl-C does
            if plugin not in self._reported:
                self._reported.add(plugin)
                self._report(f"plugin {plugin} failed in {self.hook}: {one_line(exc)}{note}")
            return False
        return True
