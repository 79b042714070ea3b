"""Forwarding generation events to plugins' `on_*` hooks, one plugin's failure never stopping another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from recipe_repl.plugins import Plugins


class PluginListener:
    """Calls plugins' `on_prompt`/`on_token`/`on_sample_end` for one generation, isolating each plugin.

    A plugin whose `on_token` raises is switched off for the rest of that sample; generation itself
    never stops because of it. Each plugin's failure in a hook is reported once per generation.
    """

    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self._token_impls = plugins._each_impl("on_token")
        self._prompt_impls = plugins._each_impl("on_prompt")
        self._end_impls = plugins._each_impl("on_sample_end")
        self._muted: set[tuple[int, str]] = set()  # (sample key, plugin)
        self._reported: set[tuple[str, str]] = set()  # (plugin, hook)

    @property
    def active(self) -> bool:
        """Whether any plugin listens at all (the loop can skip building events otherwise)."""
        return bool(self._token_impls or self._prompt_impls or self._end_impls)

    def _call(self, impl: pluggy.HookImpl, hook: str, _note: str = "", **kwargs: Any) -> bool:
        key = (impl.plugin_name, hook)
        quiet = key in self._reported  # already reported in this generation
        ok = self.plugins._call(impl, hook, _note, quiet, **kwargs)
        if not ok:
            self._reported.add(key)
        return ok

    def on_prompt(self, request: Any, prompt_ids: Sequence[int], settings: Any) -> None:
        """Forward to `on_prompt` hooks."""
        for impl in self._prompt_impls:
            self._call(impl, "on_prompt", prompt=request.prompt, prompt_ids=list(prompt_ids), settings=settings,
                       sample_key=request.key)

    def on_token(self, event: Any) -> None:
        """Forward to `on_token` hooks, muting a plugin that raises for the rest of the sample."""
        for impl in self._token_impls:
            key = (event.request.key, impl.plugin_name)
            if key in self._muted:
                continue
            ok = self._call(
                impl, "on_token", " (off for the rest of this sample)", token_id=event.token_id, word=event.word,
                probability=event.prob, step=event.step, sample_key=event.request.key,
            )
            if not ok:
                self._muted.add(key)

    def on_sample_end(self, sample: Any) -> None:
        """Forward to `on_sample_end` hooks and forget this sample's muted plugins."""
        for impl in self._end_impls:
            self._call(impl, "on_sample_end", sample=sample)
        self._muted = {k for k in self._muted if k[0] != sample.key}
