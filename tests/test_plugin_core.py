"""The plugin core's pieces on their own: the isolated hook call, the no-plugins switch, built-in names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pluggy
import pytest

from recipe_repl.plugin import hookspecs
from recipe_repl.plugin.hookcall import HookCaller, is_builtin
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.plugin.listener import PluginListener
from recipe_repl.plugin.loader import no_plugins_requested, plugin_modules_requested
from recipe_repl.plugin.manager import Plugins
from tests.helpers import write_plugin


def _pm(**plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    return pm


def test_hook_caller_isolates_each_implementation_and_reports_once() -> None:
    calls: list[tuple[str, dict[str, object]]] = []

    class Crashy:
        @hookimpl
        def on_token(self, word: str) -> None:
            raise RuntimeError(f"no {word}")

    class Quiet:
        @hookimpl
        def on_token(self, word: str, step: int) -> None:  # takes two of the five arguments
            calls.append(("third", {"word": word, "step": step}))

    class Builtin:
        @hookimpl
        def on_token(self, token_id: int) -> None:
            calls.append(("builtin", {"token_id": token_id}))

    reported: list[str] = []
    traced: list[str] = []
    pm = _pm(third=Quiet(), crashy=Crashy(), **{"builtin:x": Builtin()})
    hook = HookCaller(pm, "on_token", reported.append, traced.append)
    assert hook.plugins[0] == "builtin:x" and set(hook.plugins) == {"builtin:x", "third", "crashy"}
    args = {"token_id": 5, "word": "salt", "probability": 0.5, "step": 2, "sample_key": 0}
    assert hook.call(**args) == ["crashy"]
    assert hook.call(note=" (note)", **args) == ["crashy"]
    assert hook.call(skip={"crashy"}, **args) == []
    assert reported == ["plugin crashy failed in on_token: RuntimeError: no salt"]  # once, not three times
    assert calls[:2] == [("builtin", {"token_id": 5}), ("third", {"word": "salt", "step": 2})]
    assert "third.on_token(word='salt', step=2)" in traced
    assert not HookCaller(pm, "on_prompt", reported.append)  # nobody implements it


def test_listener_mutes_a_failing_plugin_for_the_rest_of_its_sample_only() -> None:
    seen: list[tuple[int, int]] = []

    class Flaky:
        @hookimpl
        def on_token(self, step: int, sample_key: int) -> None:
            seen.append((sample_key, step))
            if step == 1:
                raise ValueError("step one")

    reported: list[str] = []
    listener = PluginListener(_pm(flaky=Flaky()), reported.append)
    for key in (0, 1):
        for step in range(3):
            listener.on_token(SimpleNamespace(request=SimpleNamespace(key=key), token_id=3, word="w", prob=0.1,
                                              step=step))
        listener.on_sample_end(SimpleNamespace(key=key))
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]  # off after step 1 of each sample, on again for the next
    assert reported == ["plugin flaky failed in on_token: ValueError: step one (off for the rest of this sample)"]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, False),
        (["--no-plugins"], {}, True),
        (["generate", "x", "--no-plugins"], {}, True),
        (["--", "--no-plugins"], {}, False),  # after `--` it is an argument
        ([], {"RECIPE_REPL_NO_PLUGINS": "1"}, True),
        ([], {"RECIPE_REPL_NO_PLUGINS": "0"}, False),
    ],
)
def test_the_no_plugins_switch_is_read_in_one_place(argv: list[str], env: dict[str, str], expected: bool) -> None:
    assert no_plugins_requested(argv, env) is expected


def test_plugin_modules_from_the_command_line() -> None:
    argv = ["--plugin", "a", "--plugin=b.py", "generate", "x", "--", "--plugin", "c"]
    assert plugin_modules_requested(argv) == ["a", "b.py"]


def test_builtin_names() -> None:
    assert is_builtin("builtin") and is_builtin("builtin:settings_commands")
    assert not is_builtin("builtins") and not is_builtin("wordbias")


def test_a_third_party_plugin_cannot_take_a_builtin_name(tmp_path: Path) -> None:
    reported: list[str] = []
    Plugins(load_third_party=True, modules=["builtin:evil"], report=reported.append)
    assert reported == ["plugin builtin:evil not loaded: the name is reserved for recipe-repl's built-ins"]
    path = write_plugin(tmp_path, "fine", "")
    assert Plugins(load_third_party=True, modules=[str(path)]).infos[str(path)].source == "module"
