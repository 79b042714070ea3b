"""Forwarding generation events to plugins' `on_*` hooks, one plugin's failure never stopping another."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pluggy

from recipe_repl.plugin.hookcall import HookCaller


class PluginListener:
    """Calls plugins' `on_prompt`/`on_token`/`on_sample_end` for one generation, isolating each plugin.

    A plugin whose `on_token` raises is switched off for the rest of that sample; generation itself
    never stops because of it. Each plugin's failure in a hook is reported once per generation.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        report: Callable[[str], None],
        trace: Callable[[str], None] | None = None,
    ) -> None:
        self._prompt = HookCaller(pm, "on_prompt", report, trace)
        self._token = HookCaller(pm, "on_token", report, trace)
        self._end = HookCaller(pm, "on_sample_end", report, trace)
        self._muted: dict[int, set[str]] = {}  # sample key → plugins off for the rest of that sample

    @property
    def active(self) -> bool:
        """Whether any plugin listens at all (the loop can skip building events otherwise)."""
        return bool(self._token or self._prompt or self._end)

    def on_prompt(self, request: Any, prompt_ids: Sequence[int], settings: Any) -> None:
        """Forward to `on_prompt` hooks."""
        self._prompt.call(prompt=request.prompt, prompt_ids=list(prompt_ids), settings=settings,
                          sample_key=request.key)

    def on_token(self, event: Any) -> None:
        """Forward to `on_token` hooks, muting a plugin that raises for the rest of the sample."""
        key = event.request.key
        muted = self._muted.get(key, set())
        failed = self._token.call(
            muted, " (off for the rest of this sample)", token_id=event.token_id, word=event.word,
            probability=event.prob, step=event.step, sample_key=key,
        )
        if failed:
            self._muted[key] = muted | set(failed)

    def on_sample_end(self, sample: Any) -> None:
        """Forward to `on_sample_end` hooks and forget this sample's muted plugins."""
        self._end.call(sample=sample)
        self._muted.pop(sample.key, None)
