"""Loading plugins (built-ins first, through the same hooks) and isolating their failures.

Every hook implementation is called on its own, so a plugin that raises is named in one line and
the others go on. Nothing here is global: the CLI builds one `Plugins` per run.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from recipe_repl import hookspecs
from recipe_repl.commands import CommandSpec, CommandTable
from recipe_repl.errors import UserError
from recipe_repl.sampling import ProcessorFactory, ProcessorSpec

ENTRY_POINT_GROUP = "recipe_repl"
ENV_PLUGINS = "RECIPE_REPL_PLUGINS"
ENV_NO_PLUGINS = "RECIPE_REPL_NO_PLUGINS"
ENV_TRACE = "RECIPE_REPL_TRACE_HOOKS"

# The built-ins, registered like any plugin (pytest's `default_plugins`, llm's `DEFAULT_PLUGINS`).
DEFAULT_PLUGINS = (
    "recipe_repl.builtins.processors",
    "recipe_repl.builtins.settings_commands",
    "recipe_repl.builtins.session_commands",
    "recipe_repl.builtins.teaching_commands",
    "recipe_repl.builtins.loaders",
    "recipe_repl.builtins.cli_commands",
)


@dataclass(frozen=True)
class LoaderSpec:
    """A model loader from `register_model_loaders`."""

    name: str
    can_load: Callable[[Path], bool]
    load: Callable[[Path, str, int], Any]
    plugin: str = "builtin"


@dataclass
class PluginInfo:
    """What one plugin is and what it registered (for `recipe-repl plugins`)."""

    name: str
    version: str
    source: str  # "builtin", "entry point" or "module"
    commands: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)
    loaders: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "commands": self.commands,
            "processors": self.processors,
            "loaders": self.loaders,
            "hooks": self.hooks,
        }


def _is_builtin(name: str) -> bool:
    return name.startswith("builtin:")


class Plugins:
    """The loaded plugins and everything they registered."""

    def __init__(
        self,
        load_third_party: bool = True,
        modules: Sequence[str] = (),
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.problems: list[str] = []
        self._report = report
        self.commands = CommandTable()
        self.processors: dict[str, ProcessorSpec] = {}
        self.loaders: list[LoaderSpec] = []
        if os.environ.get(ENV_TRACE):
            self.pm.trace.root.setwriter(lambda msg: os.write(2, msg.encode()))
            self.pm.enable_tracing()
        for mod in DEFAULT_PLUGINS:
            self._register(importlib.import_module(mod), "builtin:" + mod.rsplit(".", 1)[-1], "builtin", "")
        if load_third_party:
            self._load_entry_points()
            env_modules = [m.strip() for m in os.environ.get(ENV_PLUGINS, "").split(",") if m.strip()]
            for name in [*env_modules, *modules]:
                self._load_module(name)
        self._collect()

    # --- discovery ------------------------------------------------------------------------------

    def problem(self, message: str) -> None:
        """Record a plugin problem and show it at once (one line)."""
        self.problems.append(message)
        if self._report is not None:
            self._report(message)

    def _register(self, plugin: object, name: str, source: str, version: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validates hook names and signatures here
            self.problem(f"plugin {name} not loaded: {_one_line(exc)}")
            return
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self.infos[name] = PluginInfo(name, version, source, hooks=hooks)

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.get_plugin(ep.name) is not None or ep.name in self.infos:
                continue
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else ""
            try:
                plugin = ep.load()
            except Exception as exc:  # any error in third-party import code must not stop the tool
                self.problem(f"plugin {ep.name} failed to import: {_one_line(exc)}")
                continue
            self._register(plugin, ep.name, "entry point", version)

    def _load_module(self, module: str) -> None:
        if module in self.infos:
            return
        try:
            path = Path(module)
            plugin = module_from_file(path) if path.suffix == ".py" else importlib.import_module(module)
        except Exception as exc:
            self.problem(f"plugin {module} failed to import: {_one_line(exc)}")
            return
        self._register(plugin, module, "module", str(getattr(plugin, "__version__", "")))

    # --- registration hooks, one implementation at a time ----------------------------------------

    def _each_impl(self, hook_name: str) -> Iterable[tuple[str, Callable[..., Any]]]:
        hook = getattr(self.pm.hook, hook_name)
        # Built-ins first so that a plugin's clash, not the built-in, is the one reported.
        impls = sorted(hook.get_hookimpls(), key=lambda i: not _is_builtin(i.plugin_name))
        for impl in impls:
            yield impl.plugin_name, impl.function

    def _collect(self) -> None:
        for plugin, func in self._each_impl("register_commands"):
            self._call(plugin, "register_commands", func, register=self._command_registrar(plugin))
        for plugin, func in self._each_impl("register_processors"):
            self._call(plugin, "register_processors", func, register=self._processor_registrar(plugin))
        for plugin, func in self._each_impl("register_model_loaders"):
            self._call(plugin, "register_model_loaders", func, register=self._loader_registrar(plugin))

    def _call(self, plugin: str, hook: str, func: Callable[..., Any], **kwargs: Any) -> None:
        try:
            func(**kwargs)
        except Exception as exc:
            self.problem(f"plugin {plugin} failed in {hook}: {_one_line(exc)}")

    def _command_registrar(self, plugin: str) -> Callable[..., None]:
        def register(name: str, handler: Any, *, override: bool = False, **options: Any) -> None:
            name = name.lstrip(":").lower()
            spec = CommandSpec(name=name, handler=handler, plugin=plugin, **options)
            if not _is_builtin(plugin) and spec.essential:
                spec = CommandSpec(**{**spec.__dict__, "essential": False})
            try:
                self.commands.add(spec, override=override)
            except ValueError as exc:
                self.problem(f"plugin {plugin}: command not registered: {exc}")
                return
            self.infos[plugin].commands.append(name)

        return register

    def _processor_registrar(self, plugin: str) -> Callable[..., None]:
        def register(
            name: str,
            factory: ProcessorFactory,
            *,
            help: str = "",
            order: int = 25,
            automatic: bool = False,
            override: bool = False,
        ) -> None:
            current = self.processors.get(name)
            if current is not None and not override:
                self.problem(
                    f"plugin {plugin}: processor {name!r} not registered: already registered by {current.plugin}"
                )
                return
            self.processors[name] = ProcessorSpec(name, factory, help, order, automatic and _is_builtin(plugin), plugin)
            self.infos[plugin].processors.append(name)

        return register

    def _loader_registrar(self, plugin: str) -> Callable[..., None]:
        def register(name: str, can_load: Callable[[Path], bool], load: Callable[..., Any]) -> None:
            # Plugins' loaders are tried before the built-in ONNX one, so they can claim a file first.
            spec = LoaderSpec(name, can_load, load, plugin)
            if _is_builtin(plugin):
                self.loaders.append(spec)
            else:
                self.loaders.insert(0, spec)
            self.infos[plugin].loaders.append(name)

        return register

    # --- using what was registered ---------------------------------------------------------------

    def processor_specs(self) -> list[ProcessorSpec]:
        """Every registered processor."""
        return list(self.processors.values())

    def add_cli_commands(self, cli: Any) -> None:
        """Let every plugin add subcommands to the click group."""
        for plugin, func in self._each_impl("register_cli_commands"):
            self._call(plugin, "register_cli_commands", func, cli=cli)

    def load_model(self, path: Path, provider: str = "auto", threads: int = 0) -> Any:
        """Open a model with the first loader that claims it."""
        for loader in self.loaders:
            try:
                claimed = loader.can_load(path)
            except Exception as exc:
                self.problem(f"plugin {loader.plugin}: loader {loader.name} failed: {_one_line(exc)}")
                continue
            if claimed:
                return loader.load(path, provider, threads)
        raise UserError(f"no model loader can open {path}")

    def listener(self) -> PluginListener:
        """A generation listener that forwards events to the plugins' `on_*` hooks."""
        return PluginListener(self)

    def listing(self) -> list[PluginInfo]:
        """Loaded plugins, built-ins first."""
        return sorted(self.infos.values(), key=lambda i: (not _is_builtin(i.name), i.name))


class PluginListener:
    """Calls plugins' `on_prompt`/`on_token`/`on_sample_end`, isolating each plugin.

    A plugin whose `on_token` raises is switched off for the rest of that sample (reported once);
    generation itself never stops because of it.
    """

    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self._token_impls = list(plugins._each_impl("on_token"))
        self._prompt_impls = list(plugins._each_impl("on_prompt"))
        self._end_impls = list(plugins._each_impl("on_sample_end"))
        self._muted: set[tuple[int, str]] = set()  # (sample key, plugin)

    @property
    def active(self) -> bool:
        """Whether any plugin listens at all (the loop can skip building events otherwise)."""
        return bool(self._token_impls or self._prompt_impls or self._end_impls)

    def on_prompt(self, request: Any, prompt_ids: Sequence[int], settings: Any) -> None:
        """Forward to `on_prompt` hooks."""
        for plugin, func in self._prompt_impls:
            self.plugins._call(
                plugin, "on_prompt", func, prompt=request.prompt, prompt_ids=list(prompt_ids), settings=settings
            )

    def on_token(self, event: Any) -> None:
        """Forward to `on_token` hooks, muting a plugin that raises for the rest of the sample."""
        for plugin, func in self._token_impls:
            key = (event.request.key, plugin)
            if key in self._muted:
                continue
            try:
                func(token_id=event.token_id, word=event.word, probability=event.prob, step=event.step)
            except Exception as exc:
                self._muted.add(key)
                self.plugins.problem(
                    f"plugin {plugin} failed in on_token: {_one_line(exc)} (off for the rest of this sample)"
                )

    def on_sample_end(self, sample: Any) -> None:
        """Forward to `on_sample_end` hooks and forget this sample's muted plugins."""
        for plugin, func in self._end_impls:
            self.plugins._call(plugin, "on_sample_end", func, sample=sample)
        self._muted = {k for k in self._muted if k[0] != sample.key}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def module_from_file(path: Path) -> ModuleType:
    """Import a plugin from a .py file path (for `--plugin path/to/plugin.py`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
