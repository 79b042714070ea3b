"""Loading plugins (built-ins first, through the same hooks) and isolating their failures.

Every hook implementation is called on its own, with only the arguments it asks for, so a plugin
that raises is named in one line and the others go on. Third-party processors and model loaders
are wrapped the same way. Nothing here is global: the CLI builds one `Plugins` per run.

`RECIPE_REPL_TRACE_HOOKS=1` writes one `trace:` line to stderr per plugin loaded and per hook call.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import reprlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pluggy

from recipe_repl import hookspecs
from recipe_repl.commands import CommandSpec, CommandTable
from recipe_repl.errors import UserError
from recipe_repl.plugin_listener import PluginListener
from recipe_repl.sampling import Processor, ProcessorFactory, ProcessorSpec
from recipe_repl.sanitize import clean

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

HOOK_NAMES = sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), hookspecs.PROJECT + "_spec"))
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_trace_repr = reprlib.Repr()
_trace_repr.maxstring = _trace_repr.maxother = 40


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
    cli_commands: list[str] = field(default_factory=list)
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
            "cli_commands": self.cli_commands,
            "hooks": self.hooks,
        }


def _is_builtin(name: str) -> bool:
    return name.startswith("builtin:")


def no_plugins_requested() -> bool:
    """Whether `RECIPE_REPL_NO_PLUGINS` asks for built-ins only."""
    return os.environ.get(ENV_NO_PLUGINS, "") not in ("", "0")


class Plugins:
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
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.problems: list[str] = []
        self._report = report
        self._tracing = bool(os.environ.get(ENV_TRACE, "") not in ("", "0"))
        self.commands = CommandTable()
        self.processors: dict[str, ProcessorSpec] = {}
        self.loaders: list[LoaderSpec] = []
        self._cli_owner: dict[str, str] = {}
        self._entry_points: dict[str, str] = {}  # name → value, to tell a duplicate from a clash
        if load_third_party is None:
            load_third_party = not no_plugins_requested()
        for mod in DEFAULT_PLUGINS:
            self._register(importlib.import_module(mod), "builtin:" + mod.rsplit(".", 1)[-1], "builtin", "")
        if load_third_party:
            if entry_points:
                self._load_entry_points()
            env_modules = [m.strip() for m in os.environ.get(ENV_PLUGINS, "").split(",") if m.strip()]
            for name in dict.fromkeys([*env_modules, *modules]):
                self._load_module(name)
        self._collect()

    # --- reporting -------------------------------------------------------------------------------

    def problem(self, message: str) -> None:
        """Record a plugin problem and show it at once (one line)."""
        self.problems.append(message)
        if self._report is not None:
            self._report(message)

    def trace(self, message: str) -> None:
        """One `trace:` line on stderr when RECIPE_REPL_TRACE_HOOKS is set."""
        if self._tracing:
            sys.stderr.write(clean(f"trace: {message}") + "\n")
            sys.stderr.flush()

    # --- discovery ------------------------------------------------------------------------------

    def _register(self, plugin: object, name: str, source: str, version: str) -> None:
        if self.pm.is_registered(plugin):
            self.trace(f"{name}: already registered as {self.pm.get_name(plugin)}, skipped")
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validates hook names and signatures here
            self.problem(f"plugin {name} not loaded: {_one_line(exc)}")
            return
        hooks = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                close = difflib.get_close_matches(caller.name, HOOK_NAMES, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.problem(f"plugin {name}: unknown hook {caller.name} ignored{hint}")
                continue
            wrappers = [i for i in caller.get_hookimpls() if i.plugin is plugin and (i.wrapper or i.hookwrapper)]
            if wrappers:
                self.problem(f"plugin {name}: hook wrappers are not supported, {caller.name} ignored")
                continue
            hooks.append(caller.name)
        self.infos[name] = PluginInfo(name, version, source, hooks=sorted(hooks))
        self.trace(f"loaded plugin {name} ({source}{', ' + version if version else ''}): {', '.join(hooks) or '-'}")

    def _load_entry_points(self) -> None:
        if not may_have_entry_points(ENTRY_POINT_GROUP):
            return
        from importlib import metadata  # ~20 ms with its email parser: only when a plugin may be there

        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else ""
            if ep.name in self.infos:
                if self._entry_points.get(ep.name) != ep.value:  # not the same package seen twice on sys.path
                    self.problem(f"plugin {ep.name} ({ep.value}) not loaded: the name is already taken")
                continue
            self._entry_points[ep.name] = ep.value
            try:
                plugin = ep.load()
            except BaseException as exc:  # noqa: BLE001 - even SystemExit in third-party import code must not end the tool
                self.problem(f"plugin {ep.name} failed to import: {_one_line(exc)}")
                continue
            self._register(plugin, ep.name, "entry point", version)

    def _load_module(self, module: str) -> None:
        if module in self.infos:
            return
        try:
            path = Path(module)
            plugin = module_from_file(path) if path.suffix == ".py" else importlib.import_module(module)
        except BaseException as exc:  # noqa: BLE001 - SystemExit or KeyboardInterrupt on import: a plugin problem
            self.problem(f"plugin {module} failed to import: {_one_line(exc)}")
            return
        self._register(plugin, module, "module", str(getattr(plugin, "__version__", "")))

    # --- calling hooks, one implementation at a time ---------------------------------------------

    def _each_impl(self, hook_name: str) -> list[pluggy.HookImpl]:
        hook = getattr(self.pm.hook, hook_name)
        impls = [i for i in hook.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
        # Built-ins first so that a plugin's clash, not the built-in, is the one reported.
        return sorted(impls, key=lambda i: not _is_builtin(i.plugin_name))

    def _call(self, impl: pluggy.HookImpl, hook: str, _note: str = "", _quiet: bool = False, **kwargs: Any) -> bool:
        """Call one implementation with the arguments it declares; False (reported) if it raised."""
        args = {k: v for k, v in kwargs.items() if k in impl.argnames or k in impl.kwargnames}
        if self._tracing:
            shown = ", ".join(f"{k}={_trace_repr.repr(v)}" if not callable(v) else k for k, v in args.items())
            self.trace(f"{impl.plugin_name}.{hook}({shown})")
        try:
            impl.function(**args)
        except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the tool; Ctrl-C still does
            if not _quiet:
                self.problem(f"plugin {impl.plugin_name} failed in {hook}: {_one_line(exc)}{_note}")
            return False
        return True

    def _collect(self) -> None:
        for impl in self._each_impl("register_commands"):
            self._call(impl, "register_commands", register=self._command_registrar(impl.plugin_name))
        for impl in self._each_impl("register_processors"):
            self._call(impl, "register_processors", register=self._processor_registrar(impl.plugin_name))
        for impl in self._each_impl("register_model_loaders"):
            self._call(impl, "register_model_loaders", register=self._loader_registrar(impl.plugin_name))

    # --- the register(...) callbacks -------------------------------------------------------------

    def _bad_name(self, plugin: str, kind: str, name: Any, handler: Any) -> bool:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            self.problem(f"plugin {plugin}: {kind} {name!r} not registered: use lower-case letters, digits, - or _")
            return True
        if not callable(handler):
            self.problem(f"plugin {plugin}: {kind} {name!r} not registered: {handler!r} is not callable")
            return True
        return False

    def _command_registrar(self, plugin: str) -> Callable[..., None]:
        def register(name: str, handler: Any, *, override: bool = False, **options: Any) -> None:
            name = name.lstrip(":").lower() if isinstance(name, str) else name
            if self._bad_name(plugin, "command", name, handler):
                return
            if not _is_builtin(plugin):
                options.pop("essential", None)  # only built-ins are essential
            aliases = options.pop("aliases", ())
            aliases = (aliases,) if isinstance(aliases, str) else tuple(aliases)
            options["aliases"] = tuple(a.lstrip(":").lower() for a in aliases if isinstance(a, str))
            if any(not _NAME_RE.fullmatch(a) for a in options["aliases"]) or len(options["aliases"]) < len(aliases):
                self.problem(f"plugin {plugin}: command :{name} not registered: bad alias in {aliases!r}")
                return
            try:
                spec = CommandSpec(name=name, handler=handler, plugin=plugin, **options)
                found = (self.commands.get(n) for n in (name, *spec.aliases))
                replaced = list({id(c): c for c in found if c is not None}.values())
                self.commands.add(spec, override=override)
            except (TypeError, ValueError) as exc:
                self.problem(f"plugin {plugin}: command :{name} not registered: {_one_line(exc, bare=True)}")
                return
            for old in replaced:
                if old.plugin in self.infos and old.name in self.infos[old.plugin].commands:
                    self.infos[old.plugin].commands.remove(old.name)
                self.trace(f"{plugin}: :{old.name} of {old.plugin} replaced (override=True)")
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
            if self._bad_name(plugin, "processor", name, factory):
                return
            current = self.processors.get(name)
            if current is not None and not override:
                self.problem(f"plugin {plugin}: processor {name!r} not registered: already registered by "
                             f"{current.plugin} (ask for override to replace it)")
                return
            if current is not None and name in self.infos[current.plugin].processors:
                self.infos[current.plugin].processors.remove(name)
            if not _is_builtin(plugin):
                factory = self._guarded_factory(plugin, name, factory)
            # Only built-ins run without `:use`, and a plugin that overrides one of them (say,
            # "temperature") takes its place in the chain, driven by the settings.
            automatic = (automatic and _is_builtin(plugin)) or (current is not None and current.automatic)
            spec = ProcessorSpec(name, factory, help, int(order), automatic, plugin)
            self.processors[name] = spec
            self.infos[plugin].processors.append(name)

        return register

    def _guarded_factory(self, plugin: str, name: str, factory: ProcessorFactory) -> ProcessorFactory:
        """A third-party factory whose crash is a UserError and whose processor cannot stop generation."""

        def guarded(settings: Any, args: tuple[str, ...], vocab: Any) -> Processor | None:
            try:
                proc = factory(settings, args, vocab)
            except UserError:
                raise
            except Exception as exc:
                raise UserError(f"processor {name} (plugin {plugin}) failed: {_one_line(exc)}") from None
            return None if proc is None else self._guarded_processor(plugin, name, proc)

        return guarded

    def _guarded_processor(self, plugin: str, name: str, proc: Processor) -> Processor:
        failed = False

        def guarded(logits: np.ndarray, context: Any) -> np.ndarray:
            nonlocal failed
            if failed:
                return logits
            try:
                out = proc(logits, context)
                if not isinstance(out, np.ndarray) or out.shape != logits.shape:
                    raise TypeError(f"returned {type(out).__name__} {getattr(out, 'shape', '')}, not logits "
                                    f"of shape {logits.shape}")
            except Exception as exc:
                failed = True
                self.problem(f"plugin {plugin}: processor {name} failed: {_one_line(exc)} "
                             "(off for the rest of this generation)")
                return logits
            return out

        return guarded

    def _loader_registrar(self, plugin: str) -> Callable[..., None]:
        def register(name: str, can_load: Callable[[Path], bool], load: Callable[..., Any]) -> None:
            if self._bad_name(plugin, "loader", name, load) or self._bad_name(plugin, "loader", name, can_load):
                return
            # Plugins' loaders are tried before the built-in ONNX one, so they can claim a file first.
            if _is_builtin(plugin):
                self.loaders.append(LoaderSpec(name, can_load, load, plugin))
            else:
                self.loaders.insert(0, LoaderSpec(name, can_load, _guarded_load(plugin, name, load), plugin))
            self.infos[plugin].loaders.append(name)

        return register

    # --- using what was registered ---------------------------------------------------------------

    def processor_specs(self) -> list[ProcessorSpec]:
        """Every registered processor."""
        return list(self.processors.values())

    def add_cli_commands(self, cli: Any) -> None:
        """Let every plugin add subcommands to the click group; a plugin cannot replace an existing one."""
        for impl in self._each_impl("register_cli_commands"):
            plugin = impl.plugin_name
            before = dict(cli.commands)
            self._call(impl, "register_cli_commands", cli=cli)
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


def may_have_entry_points(group: str, paths: Sequence[str] | None = None) -> bool:
    """False only when no distribution on `paths` (default: sys.path) declares an entry point in `group`.

    A cheap look at each `*.dist-info/entry_points.txt` (or `*.egg-info`) so that start-up pays for
    importlib.metadata only when a plugin is installed; anything unusual (a zip on the path, an
    unreadable folder) answers True and the full scan decides.
    """
    header = f"[{group}]"
    for entry in sys.path if paths is None else paths:
        try:
            with os.scandir(entry or ".") as it:
                names = [e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True  # a zip or wheel on sys.path: let importlib.metadata read it
        except OSError:
            continue  # a missing folder holds no distributions
        for name in names:
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as f:
                    if any(line.strip() == header for line in f):
                        return True
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError):
                return True
    return False


def _guarded_load(plugin: str, name: str, load: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(path: Path, provider: str, threads: int) -> Any:
        try:
            return load(path, provider, threads)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"plugin {plugin}: loader {name} cannot open {path}: {_one_line(exc)}") from None

    return guarded


def _one_line(exc: BaseException, bare: bool = False) -> str:
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if isinstance(exc, pluggy.PluginValidationError) and len(text) > 1:
        text = ["; ".join(text[1:])]  # pluggy's first line only names the plugin and the hook
    if bare and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def module_from_file(path: Path) -> ModuleType:
    """Import a plugin from a .py file path (for `--plugin path/to/plugin.py`)."""
    import importlib.util

    if not path.is_file():
        raise UserError(f"no such file {path}")
    spec = importlib.util.spec_from_file_location(f"recipe_repl_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_NO_PLUGINS",
    "ENV_PLUGINS",
    "ENV_TRACE",
    "LoaderSpec",
    "PluginInfo",
    "PluginListener",
    "Plugins",
    "module_from_file",
    "no_plugins_requested",
]

