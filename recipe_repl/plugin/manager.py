"""The plugin manager: loading plugins (built-ins first, through the same hooks) and what they registered.

Three helpers do the work: `loader` finds and imports plugins, `registry` checks and
keeps what they register, `hookcall` calls each implementation on its own so that a plugin that
raises is named in one line and the others go on. Nothing here is global: the CLI builds one
`Plugins` per run.

`RECIPE_REPL_TRACE_HOOKS=1` writes one `trace:` line to stderr per plugin loaded and per hook call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pluggy

from recipe_repl.plugin import hookspecs
from recipe_repl.plugin.commands import close_matches
from recipe_repl.plugin.hookcall import HookCaller, one_line
from recipe_repl.plugin.listener import PluginListener
from recipe_repl.plugin.loader import (
    DEFAULT_PLUGINS,
    ENTRY_POINT_GROUP,
    ENV_NO_PLUGINS,
    ENV_PLUGINS,
    FoundPlugin,
    find_plugins,
    may_have_entry_points,
    module_from_file,
    no_plugins_requested,
)
from recipe_repl.plugin.registry import FeatureSpec, LoaderSpec, PluginInfo, Registry

ENV_TRACE = "RECIPE_REPL_TRACE_HOOKS"
HOOK_NAMES = sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), hookspecs.PROJECT + "_spec"))


class Plugins(Registry):
    """The loaded plugins and everything they registered.

    Built-ins are always loaded. `load_third_party=False` stops everything else (None follows
    `RECIPE_REPL_NO_PLUGINS`); `entry_points=False` skips installed plugins but still loads
    `modules` and `RECIPE_REPL_PLUGINS` (what a plugin's own tests want).
    """

    def __init__(
        self,
        load_third_party: bool | None = None,
        modules: Sequence[str] = (),
        report: Callable[[str], None] | None = None,
        entry_points: bool = True,
    ) -> None:
        super().__init__(report, tracing=os.environ.get(ENV_TRACE, "") not in ("", "0"))
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._cli_owner: dict[str, str] = {}
        if load_third_party is None:
            load_third_party = not no_plugins_requested()
        for found in find_plugins(self.problem, load_third_party, modules, entry_points):
            self._register(found)
        self._collect()

    def _register(self, found: FoundPlugin) -> None:
        """Hand one plugin to pluggy, which checks its hooks' names and signatures."""
        plugin, name = found.plugin, found.name
        if self.pm.is_registered(plugin):
            self.trace(f"{name}: already registered as {self.pm.get_name(plugin)}, skipped")
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validates hook names and signatures here
            self.problem(f"plugin {name} not loaded: {one_line(exc)}")
            return
        hooks = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                close = close_matches(caller.name, HOOK_NAMES, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.problem(f"plugin {name}: unknown hook {caller.name} ignored{hint}")
                continue
            wrappers = [i for i in caller.get_hookimpls() if i.plugin is plugin and (i.wrapper or i.hookwrapper)]
            if wrappers:
                self.problem(f"plugin {name}: hook wrappers are not supported, {caller.name} ignored")
                continue
            hooks.append(caller.name)
        self.infos[name] = PluginInfo(name, found.version, found.source, hooks=sorted(hooks))
        version = f", {found.version}" if found.version else ""
        self.trace(f"loaded plugin {name} ({found.source}{version}): {', '.join(hooks) or '-'}")

    def hook(self, name: str) -> HookCaller:
        """Every implementation of hook `name`, to be called each on its own (see `HookCaller`)."""
        return HookCaller(self.pm, name, self.problem, self.trace if self._tracing else None)

    def _collect(self) -> None:
        registrars = {
            "register_commands": self.command_registrar,
            "register_processors": self.processor_registrar,
            "register_model_loaders": self.loader_registrar,
            "register_cell_features": self.feature_registrar,
        }
        for hook_name, registrar in registrars.items():
            hook = self.hook(hook_name)
            for plugin in hook.plugins:
                hook.call_one(plugin, register=registrar(plugin))

    # --- using what was registered ---------------------------------------------------------------

    def add_cli_commands(self, cli: Any) -> None:
        """Let every plugin add subcommands to the click group; a plugin cannot replace an existing one."""
        hook = self.hook("register_cli_commands")
        for plugin in hook.plugins:
            before = dict(cli.commands)
            hook.call_one(plugin, cli=cli)
            for name, command in list(cli.commands.items()):
                old = before.get(name)
                if old is None:
                    self._cli_owner[name] = plugin
                    if name not in self.infos[plugin].cli_commands:
                        self.infos[plugin].cli_commands.append(name)
                elif old is not command:
                    cli.commands[name] = old
                    owner = self._cli_owner.get(name, "recipe-repl")
                    self.problem(f"plugin {plugin}: subcommand {name!r} not registered: already registered by {owner}")

    def listener(self) -> PluginListener:
        """A generation listener that forwards events to the plugins' `on_*` hooks."""
        return PluginListener(self.pm, self.problem, self.trace if self._tracing else None)


__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "ENV_NO_PLUGINS",
    "ENV_PLUGINS",
    "ENV_TRACE",
    "FeatureSpec",
    "HOOK_NAMES",
    "LoaderSpec",
    "PluginInfo",
    "PluginListener",
    "Plugins",
    "may_have_entry_points",
    "module_from_file",
    "no_plugins_requested",
]
