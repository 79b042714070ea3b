"""From command-line options to a running session, for the REPL, batch mode and `generate` alike.

The options are defined once here, in one order: the model, then one flag per `Settings` field in
the dataclass's own order, then `--json`. The flag list is derived from `dataclasses.fields`, so a
setting without a flag stops every command line at once (a test checks the same from the outside).
Settings come from the config file's `[settings]`, then the flags; the model from `--model`, the
config, or the shipped one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from recipe_repl.base.config import Config
from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import GREEDY_BELOW, PROBS_MODES, Settings
from recipe_repl.generate.loop import MAX_PROMPT_TOKENS
from recipe_repl.model.engine import MAX_THREADS, PROVIDERS, auto_threads
from recipe_repl.plugin.commands import split_args
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import Frontend, ModelSpec, Session

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

MAX_TOKENS_HELP = (
    "generate at most N tokens; only generated tokens count (the lecture's max_tokens counts the prompt too)"
)

MODEL_OPTIONS: tuple[Decorator, ...] = (
    click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), help="an .onnx model file"),
    click.option("--vocab", type=click.Path(dir_okay=False, path_type=Path),
                 help="vocabulary for a model that carries none (e.g. a notebook's export): one word a line, "
                      "in the model's id order, or a JSON list"),
    click.option("--provider", type=click.Choice(PROVIDERS), help="ONNX Runtime device"),
    click.option("--threads", type=int,
                 help=f"ONNX Runtime threads, 1 to {MAX_THREADS}; 0 or unset: automatic, 1 in the REPL (one "
                      "sample at a time: no second core kept spinning) and one per core in batch mode and "
                      "`generate` (many rows a step)"),
)

# One flag per `Settings` field, keyed by the field's name (the option's destination is that name).
SETTING_OPTIONS: dict[str, Decorator] = {
    "temperature": click.option("--temperature", "-t", "temperature", type=float,
                                help=f"0 (or below {GREEDY_BELOW:g}) = greedy, 1 = the model's own distribution"),
    "top_k": click.option("--top-k", "top_k", type=int, help="keep the K most likely words (0 = off)"),
    "top_p": click.option("--top-p", "top_p", type=float, help="nucleus sampling threshold (1 = off)"),
    "min_p": click.option("--min-p", "min_p", type=float, help="drop words below P × the top word's probability"),
    "repetition_penalty": click.option("--repetition-penalty", "repetition_penalty", type=float,
                                       help="> 1 discourages words already generated (1 = off, 1.2 is mild)"),
    "max_tokens": click.option("--max-tokens", "max_tokens", type=int, help=MAX_TOKENS_HELP),
    "seed": click.option("--seed", "seed", type=int, help="seed for reproducible samples"),
    "n": click.option("--n", "n", type=int, help="samples per prompt"),
    "allow_unk": click.option("--unk/--no-unk", "allow_unk", default=None,
                              help="allow [UNK] in the output, or never emit it"),
    "stop": click.option("--stop", "stop", metavar="TEXT", help="end a sample once its text contains TEXT"),
    "probs": click.option("--probs", "probs", type=click.Choice(PROBS_MODES),
                          help="probability tables while generating in the REPL"),
    "probs_n": click.option("--probs-n", "probs_n", type=int, metavar="N", help="rows in those tables"),
    "raw": click.option("--raw/--no-raw", "raw", default=None,
                        help="print the model's tokens instead of readable text"),
    "use": click.option("--use", "use", multiple=True, metavar="'NAME ARGS'",
                        help="add a plugin's logits processor, e.g. --use 'boost chicken 2' (repeatable)"),
    "beam": click.option("--beam", "beam", type=int, metavar="K",
                         help="beam search of width K instead of sampling: the K likeliest continuations (0 = off)"),
    "length_penalty": click.option("--length-penalty", "length_penalty", type=float, metavar="X",
                                   help="beams rank by log-probability / length^X (1 = mean log-probability)"),
}

# Options of a run rather than of a sample.
RUN_OPTIONS: tuple[Decorator, ...] = (
    click.option("--top-alternatives", "top_alternatives", type=click.IntRange(0, 100), metavar="N",
                 help="with --json: the N most likely words at each step, with their probabilities"),
    click.option("--max-prompt-tokens", "max_prompt_tokens", type=click.IntRange(1, 10_000_000), metavar="N",
                 help=f"refuse prompts longer than N tokens (default {MAX_PROMPT_TOKENS:,})"),
)

JSON_OPTION: Decorator = click.option("--json", "json_out", is_flag=True,
                                      help="JSON output (JSON Lines in batch mode)")


def setting_names() -> list[str]:
    """Every setting, in the dataclass's order."""
    return [f.name for f in dataclasses.fields(Settings)]


def session_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options (model, every setting, --json) to a click command function, in that order."""
    missing = [name for name in setting_names() if name not in SETTING_OPTIONS]
    if missing:
        raise RuntimeError(f"settings without a command-line flag: {', '.join(missing)}")
    options = [*MODEL_OPTIONS, *(SETTING_OPTIONS[name] for name in setting_names()), JSON_OPTION, *RUN_OPTIONS]
    for option in reversed(options):  # click lists a function's options in decorator order, top first
        func = option(func)
    return func


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Only the model options and --json (for commands that read a model but do not sample, like `score`)."""
    for option in reversed([*MODEL_OPTIONS, JSON_OPTION, RUN_OPTIONS[1]]):
        func = option(func)
    return func


def settings_from(config: Config, opts: dict[str, Any]) -> Settings:
    """The config file's starting settings, with the flags that were given on top (validated)."""
    flags = {name: opts.get(name) for name in setting_names()}
    flags["use"] = [_use_entry(text) for text in flags["use"] or ()] or None
    given = {name: value for name, value in flags.items() if value is not None}
    return Settings.from_mapping(given, base=config.starting_settings())


def _use_entry(text: str) -> list[Any]:
    parts = split_args(text)
    if not parts:
        raise UserError("--use needs a processor name, e.g. --use 'boost chicken 2'")
    return [parts[0], parts[1:]]


def model_spec(config: Config, opts: dict[str, Any], interactive: bool = False) -> ModelSpec:
    """Which model to open: `--model`, else the config's `model`, else the shipped one.

    Threads: `--threads`, else the config's, else automatic for the use (`engine.auto_threads`).
    """
    from recipe_repl.models import DEFAULT_MODEL

    path = opts.get("model") or (Path(os.path.expanduser(config.model)) if config.model else DEFAULT_MODEL)
    if not opts.get("model") and not config.model and not DEFAULT_MODEL.is_file():
        raise UserError(f"the shipped model is missing ({DEFAULT_MODEL}): run `make model` or pass --model FILE")
    provider = opts.get("provider") or config.provider or "auto"
    threads: int = opts["threads"] if opts.get("threads") is not None else (config.threads or 0)
    if threads == 0:
        threads = auto_threads(interactive)
    return ModelSpec(Path(path), provider, threads, opts.get("vocab"))


def start_session(plugins: Plugins, frontend: Frontend, opts: dict[str, Any], batch_size: int = 32,
                  keep_transcript: bool = True) -> Session:
    """Config → settings → model spec → `Session`, with the model opened now: a bad file fails before any prompt."""
    config = Config.load()
    settings = settings_from(config, opts)
    spec = model_spec(config, opts, interactive=frontend.interactive)
    session = Session(plugins, frontend, spec, settings, config, batch_size, keep_transcript=keep_transcript,
                      max_prompt_tokens=opts.get("max_prompt_tokens") or MAX_PROMPT_TOKENS)
    session.top_alternatives = opts.get("top_alternatives") or 0
    info = session.engine.info
    if spec.provider == "auto" and info.provider == "cpu" and _cuda_offered():
        frontend.message("CUDA is offered but could not be used; running on the CPU", "warning")
    return session


def _cuda_offered() -> bool:
    from recipe_repl.model.engine import available_providers

    return "CUDAExecutionProvider" in available_providers()
