"""Finding plugins: the built-ins, installed entry points, and modules or .py files named by the user.

Only finding and importing happen here; what a plugin registers is checked by `registry`,
and `manager.Plugins` puts the two together. Whether third-party plugins load at all is decided
once, by `no_plugins_requested`, from `--no-plugins` and `RECIPE_REPL_NO_PLUGINS`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from recipe_repl.base.errors import UserError
from recipe_repl.plugin.hookcall import BUILTIN, is_builtin, one_line, plugin_stdout

ENTRY_POINT_GROUP = "recipe_repl"
ENV_PLUGINS = "RECIPE_REPL_PLUGINS"
ENV_NO_PLUGINS = "RECIPE_REPL_NO_PLUGINS"
NO_PLUGINS_FLAG = "--no-plugins"
PLUGIN_FLAG = "--plugin"

# The built-ins, registered like any plugin (pytest's `default_plugins`, llm's `DEFAULT_PLUGINS`).
DEFAULT_PLUGINS = (
    "recipe_repl.builtins.processors",
    "recipe_repl.builtins.settings_commands",
    "recipe_repl.builtins.session_commands",
    "recipe_repl.builtins.teaching_commands",
    "recipe_repl.builtins.why_commands",
    "recipe_repl.builtins.loop_commands",
    "recipe_repl.builtins.cells_commands",
    "recipe_repl.builtins.lstm_views",
    "recipe_repl.builtins.lstm_interventions",
    "recipe_repl.builtins.compare_models",
    "recipe_repl.builtins.lecture_commands",
    "recipe_repl.builtins.loaders",
    "recipe_repl.frontends.cli_commands",
)


@dataclass(frozen=True)
class FoundPlugin:
    """A plugin object, imported and ready to register."""

    plugin: object
    name: str
    source: str  # "builtin", "entry point" or "module"
    version: str = ""


def no_plugins_requested(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> bool:
    """Whether built-ins only were asked for: `--no-plugins` among `argv` or `RECIPE_REPL_NO_PLUGINS` set.

    The one place the switch is read: the command line needs it before click runs (plugins add
    subcommands), and `Plugins()` without `argv` follows the environment alone.
    """
    env = os.environ if environ is None else environ
    return NO_PLUGINS_FLAG in _options(argv) or env.get(ENV_NO_PLUGINS, "") not in ("", "0")


def plugin_modules_requested(argv: Sequence[str]) -> list[str]:
    """The `--plugin MODULE` / `--plugin=MODULE` values among `argv`, in order."""
    options = _options(argv)
    modules = []
    for i, arg in enumerate(options):
        if arg == PLUGIN_FLAG and i + 1 < len(options):
            modules.append(options[i + 1])
        elif arg.startswith(PLUGIN_FLAG + "="):
            modules.append(arg.split("=", 1)[1])
    return modules


def _options(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    return args[: args.index("--")] if "--" in args else args  # after `--` everything is an argument


def find_plugins(
    problem: Callable[[str], None],
    load_third_party: bool,
    modules: Sequence[str] = (),
    entry_points: bool = True,
) -> Iterator[FoundPlugin]:
    """The built-ins, then (unless `load_third_party` is False) entry points, `RECIPE_REPL_PLUGINS` and `modules`.

    A plugin that fails to import, or whose name is taken, is reported through `problem` and skipped.
    """
    for module in DEFAULT_PLUGINS:
        yield FoundPlugin(importlib.import_module(module), f"{BUILTIN}:{module.rsplit('.', 1)[-1]}", BUILTIN)
    if not load_third_party:
        return
    seen: dict[str, str] = {}  # entry point name → value, to tell a duplicate from a clash
    if entry_points:
        yield from _entry_points(problem, seen)
    env_modules = [m.strip() for m in os.environ.get(ENV_PLUGINS, "").split(",") if m.strip()]
    for name in dict.fromkeys([*env_modules, *modules]):
        if name in seen:
            continue
        if is_builtin(name):
            problem(f"plugin {name} not loaded: the name is reserved for recipe-repl's built-ins")
            continue
        try:
            path = Path(name)
            with plugin_stdout():  # a plugin that prints on import does not write into stdout either
                plugin = module_from_file(path) if path.suffix == ".py" else importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - even SystemExit in third-party import code must not end the tool
            problem(f"plugin {name} failed to import: {one_line(exc)}")
            continue
        yield FoundPlugin(plugin, name, "module", str(getattr(plugin, "__version__", "")))


def _entry_points(problem: Callable[[str], None], seen: dict[str, str]) -> Iterator[FoundPlugin]:
    if not may_have_entry_points(ENTRY_POINT_GROUP):
        return
    from importlib import metadata  # ~20 ms with its email parser: only when a plugin may be there

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else ""
        if is_builtin(ep.name):
            problem(f"plugin {ep.name} ({ep.value}) not loaded: the name is reserved for recipe-repl's built-ins")
            continue
        if ep.name in seen:
            if seen[ep.name] != ep.value:  # not the same package seen twice on sys.path
                problem(f"plugin {ep.name} ({ep.value}) not loaded: the name is already taken")
            continue
        seen[ep.name] = ep.value
        try:
            with plugin_stdout():
                plugin = ep.load()
        except BaseException as exc:  # noqa: BLE001 - even SystemExit in third-party import code must not end the tool
            problem(f"plugin {ep.name} failed to import: {one_line(exc)}")
            continue
        yield FoundPlugin(plugin, ep.name, "entry point", version)


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
