"""What plugins registered: the `register(...)` callbacks the hooks hand out, with their checks.

A bad name, a clash or a handler that is not callable is reported in one line naming the plugin and
not registered. Third-party processors and model loaders are wrapped so that their crash is one
line too (`_guarded_*`); only built-ins may be essential commands or run without `:use`.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean
from recipe_repl.generate.sampling import PLUGIN_ORDER, Processor, ProcessorFactory, ProcessorSpec
from recipe_repl.plugin.commands import CommandSpec, CommandTable
from recipe_repl.plugin.hookcall import BUILTIN, is_builtin, one_line

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class LoaderSpec:
    """A model loader from `register_model_loaders`; `takes_vocab` if `load` accepts a `vocab` keyword."""

    name: str
    can_load: Callable[[Path], bool]
    load: Callable[..., Any]
    plugin: str = BUILTIN
    takes_vocab: bool = False


@dataclass(frozen=True)
class FeatureSpec:
    """A text feature for `:cells find` from `register_cell_features`: `feature(words)` → one number per word."""

    name: str
    feature: Callable[[list[str]], Any]
    help: str = ""
    plugin: str = BUILTIN


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
    features: list[str] = field(default_factory=list)

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
            "features": self.features,
        }


class Registry:
    """The commands, processors and model loaders plugins registered, and each plugin's `PluginInfo`.

    `report` shows a problem at once (one line); `tracing` writes `trace:` lines to stderr.
    """

    def __init__(self, report: Callable[[str], None] | None = None, tracing: bool = False) -> None:
        self.infos: dict[str, PluginInfo] = {}
        self.problems: list[str] = []
        self.commands = CommandTable()
        self.processors: dict[str, ProcessorSpec] = {}
        self.loaders: list[LoaderSpec] = []
        self.features: dict[str, FeatureSpec] = {}
        self._report = report
        self._tracing = tracing

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

    # --- the register(...) callbacks -------------------------------------------------------------

    def _bad_name(self, plugin: str, kind: str, name: Any, handler: Any) -> bool:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            self.problem(f"plugin {plugin}: {kind} {name!r} not registered: use lower-case letters, digits, - or _")
            return True
        if not callable(handler):
            self.problem(f"plugin {plugin}: {kind} {name!r} not registered: {handler!r} is not callable")
            return True
        return False

    def _may_replace(self, plugin: str, kind: str, name: str, current: ProcessorSpec | FeatureSpec | None,
                     override: bool) -> bool:
        """Whether `plugin` may register the `kind` `name` where `current` is (None: nothing yet).

        A clash without `override` is reported and refused; an override takes the name off the
        listing of the plugin it replaces.
        """
        if current is None:
            return True
        if not override:
            self.problem(f"plugin {plugin}: {kind} {name!r} not registered: already registered by "
                         f"{current.plugin} (ask for override to replace it)")
            return False
        listed: list[str] = getattr(self.infos[current.plugin], f"{kind}s")  # .processors or .features
        if name in listed:
            listed.remove(name)
        return True

    def command_registrar(self, plugin: str) -> Callable[..., None]:
        """The `register` that `register_commands` hands to `plugin`."""

        def register(name: str, handler: Any, *, override: bool = False, **options: Any) -> None:
            name = name.lstrip(":").lower() if isinstance(name, str) else name
            if self._bad_name(plugin, "command", name, handler):
                return
            if not is_builtin(plugin):
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
                self.problem(f"plugin {plugin}: command :{name} not registered: {one_line(exc, bare=True)}")
                return
            for old in replaced:
                if old.plugin in self.infos and old.name in self.infos[old.plugin].commands:
                    self.infos[old.plugin].commands.remove(old.name)
                self.trace(f"{plugin}: :{old.name} of {old.plugin} replaced (override=True)")
            self.infos[plugin].commands.append(name)

        return register

    def processor_registrar(self, plugin: str) -> Callable[..., None]:
        """The `register` that `register_processors` hands to `plugin`."""

        def register(
            name: str,
            factory: ProcessorFactory,
            *,
            help: str = "",
            order: int = PLUGIN_ORDER,
            automatic: bool = False,
            override: bool = False,
        ) -> None:
            if self._bad_name(plugin, "processor", name, factory):
                return
            current = self.processors.get(name)
            if not self._may_replace(plugin, "processor", name, current, override):
                return
            if not is_builtin(plugin):
                factory = self._guarded_factory(plugin, name, factory)
            # Only built-ins run without `:use`, and a plugin that overrides one of them (say,
            # "temperature") takes its place in the chain, driven by the settings.
            automatic = (automatic and is_builtin(plugin)) or (current is not None and current.automatic)
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
                raise UserError(f"processor {name} (plugin {plugin}) failed: {one_line(exc)}") from None
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
                self.problem(f"plugin {plugin}: processor {name} failed: {one_line(exc)} "
                             "(off for the rest of this generation)")
                return logits
            return out

        return guarded

    def loader_registrar(self, plugin: str) -> Callable[..., None]:
        """The `register` that `register_model_loaders` hands to `plugin`."""

        def register(name: str, can_load: Callable[[Path], bool], load: Callable[..., Any]) -> None:
            if self._bad_name(plugin, "loader", name, load) or self._bad_name(plugin, "loader", name, can_load):
                return
            takes_vocab = _takes_keyword(load, "vocab")
            # Plugins' loaders are tried before the built-in ONNX one, so they can claim a file first.
            if is_builtin(plugin):
                self.loaders.append(LoaderSpec(name, can_load, load, plugin, takes_vocab))
            else:
                guarded = _guarded_load(plugin, name, load)
                self.loaders.insert(0, LoaderSpec(name, can_load, guarded, plugin, takes_vocab))
            self.infos[plugin].loaders.append(name)

        return register

    def feature_registrar(self, plugin: str) -> Callable[..., None]:
        """The `register` that `register_cell_features` hands to `plugin`."""

        def register(name: str, feature: Callable[[list[str]], Any], *, help: str = "",
                     override: bool = False) -> None:
            if self._bad_name(plugin, "feature", name, feature):
                return
            if not self._may_replace(plugin, "feature", name, self.features.get(name), override):
                return
            self.features[name] = FeatureSpec(name, feature, str(help), plugin)
            self.infos[plugin].features.append(name)

        return register

    # --- using what was registered ---------------------------------------------------------------

    def processor_specs(self) -> list[ProcessorSpec]:
        """Every registered processor."""
        return list(self.processors.values())

    def load_model(self, path: Path, provider: str = "auto", threads: int = 0, vocab: Path | None = None) -> Any:
        """Open a model with the first loader that claims it; `vocab` is a vocabulary file (`--vocab`) or None."""
        for loader in self.loaders:
            try:
                claimed = loader.can_load(path)
            except Exception as exc:
                self.problem(f"plugin {loader.plugin}: loader {loader.name} failed: {one_line(exc)}")
                continue
            if not claimed:
                continue
            if vocab is None:
                return loader.load(path, provider, threads)
            if not loader.takes_vocab:
                raise UserError(f"model loader {loader.name} (plugin {loader.plugin}) takes no vocabulary file: "
                                f"drop --vocab for {path}")
            return loader.load(path, provider, threads, vocab=vocab)
        raise UserError(f"no model loader can open {path}")

    def listing(self) -> list[PluginInfo]:
        """Loaded plugins, built-ins first."""
        return sorted(self.infos.values(), key=lambda i: (not is_builtin(i.name), i.name))


def _takes_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether `func` can be called with the keyword `name` (named, or through **kwargs)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: call them the old way
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind is not p.POSITIONAL_ONLY) for p in params)


def _guarded_load(plugin: str, name: str, load: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(path: Path, provider: str, threads: int, **vocab: Any) -> Any:
        try:
            return load(path, provider, threads, **vocab)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"plugin {plugin}: loader {name} cannot open {path}: {one_line(exc)}") from None

    return guarded
