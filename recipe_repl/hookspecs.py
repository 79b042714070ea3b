"""The plugin hooks. Built-ins implement them exactly as third-party plugins do.

A plugin is a module (or object) with functions marked `@hookimpl`, found through the
`recipe_repl` entry-point group, `--plugin MODULE` or `RECIPE_REPL_PLUGINS`.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "recipe_repl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_commands(register: Any) -> None:
    """Add `:name` commands: `register(name, handler, help=, usage=, details=, complete=, aliases=,
    interactive_only=, override=)`; `handler(session, args)` raises UserError for bad arguments."""


@hookspec
def register_processors(register: Any) -> None:
    """Add logits processors usable with `:use NAME ARGS`: `register(name, factory, help=, order=)`;
    `factory(settings, args, vocab)` returns `processor(logits, context) -> logits` or None."""


@hookspec
def register_cli_commands(cli: Any) -> None:
    """Add `recipe-repl SUBCOMMAND`s to the click group `cli` (`cli.add_command(...)`)."""


@hookspec
def register_model_loaders(register: Any) -> None:
    """Open other model files behind the engine interface: `register(name, can_load, load)` with
    `can_load(path) -> bool` and `load(path, provider, threads) -> Engine`."""


@hookspec
def on_prompt(prompt: str, prompt_ids: list[int], settings: Any) -> None:
    """A sample is about to be generated from `prompt` (already tokenized as `prompt_ids`)."""


@hookspec
def on_token(token_id: int, word: str, probability: float, step: int) -> None:
    """One word was generated (`word` is "" and `token_id` 0 for the stop token)."""


@hookspec
def on_sample_end(sample: Any) -> None:
    """A sample finished: `sample.text`, `sample.stop_reason`, `sample.settings`, `sample.token_ids`."""
