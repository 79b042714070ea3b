"""The plugin hooks. Built-ins implement them exactly as third-party plugins do.

A plugin is a module (or object) with functions marked `@hookimpl`, found through the
`recipe_repl` entry-point group, `--plugin MODULE|file.py` or `RECIPE_REPL_PLUGINS`. An
implementation may take any subset of a hook's arguments. docs/plugins.md repeats each docstring
below; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # annotations only: importing these here would pull in the engine
    import click

    from recipe_repl.base.settings import Settings
    from recipe_repl.generate.loop import Sample

Register = Callable[..., None]

PROJECT = "recipe_repl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_commands(register: Register) -> None:
    """Add `:name` commands: `register(name, handler, help=, usage=, details=, complete=, aliases=,
    interactive_only=, override=)`; `handler(session, args)` raises UserError for bad arguments,
    `complete(session, text)` returns candidate arguments; a clash with an existing command is an
    error unless `override=True`, and `:quit`/`:help` can never be replaced."""


@hookspec
def register_processors(register: Register) -> None:
    """Add logits processors usable with `:use NAME ARGS` or the config's `use` setting:
    `register(name, factory, help=, order=, override=)`; `factory(settings, args, vocab)` returns
    `processor(logits, context) -> logits` or None, and raises UserError for bad arguments."""


@hookspec
def register_cli_commands(cli: click.Group) -> None:
    """Add `recipe-repl SUBCOMMAND`s to the click group `cli` (`cli.add_command(...)`); an existing
    subcommand is never replaced."""


@hookspec
def register_model_loaders(register: Register) -> None:
    """Open other model files behind the engine interface: `register(name, can_load, load)` with
    `can_load(path) -> bool` and `load(path, provider, threads) -> Engine` (a `load` that also takes
    `vocab=` gets the `--vocab` file, or None); tried before ONNX."""


@hookspec
def on_prompt(prompt: str, prompt_ids: list[int], settings: Settings, sample_key: int) -> None:
    """A sample is about to be generated from `prompt` (already tokenized as `prompt_ids`);
    `sample_key` numbers the sample within the run, as `sample.key` does in `on_sample_end`."""


@hookspec
def on_token(token_id: int, word: str, probability: float, step: int, sample_key: int) -> None:
    """One word was generated (`word` is "" and `token_id` 0 for the stop token); `step` counts
    from 0 within the sample; a listener that raises is switched off for the rest of that sample."""


@hookspec
def on_sample_end(sample: Sample) -> None:
    """A sample finished: `sample.text`, `sample.stop_reason`, `sample.settings`, `sample.token_ids`,
    `sample.probs`, `sample.prompt`, `sample.key`."""


@hookspec
def register_cell_features(register: Register) -> None:
    """Add features of a text for `:cells find NAME`: `register(name, feature, help=, override=)`;
    `feature(words)` gets the words of one text as the model reads them and returns one number per
    word (say 1.0 inside a span, 0.0 outside); units are ranked by their correlation with it."""
