"""recipe-repl plugin: `banwords`/`boost` logit bias by word, and a SQLite log of every sample.

Hooks used:

- `register_processors`: `:use banwords salt pepper`, `:use boost chicken 2.0` (see `bias.py`);
- `on_prompt`, `on_token`, `on_sample_end`: time each sample and log it with its settings to a
  SQLite file (see `log.py`);
- `register_cli_commands`: `recipe-repl log` shows the last entries.

Installed through the `recipe_repl` entry point group (see pyproject.toml).
"""

from __future__ import annotations

import time
from typing import Any

from recipe_repl.plugin import hookimpl
from recipe_repl_wordbias import bias, log

__version__ = "0.1.0"

# Per-sample timings between on_prompt and on_sample_end, by the sample's key in the run.
_started: dict[int, float] = {}
_first_token: dict[int, float] = {}


@hookimpl
def register_processors(register: Any) -> None:
    """banwords and boost; order 25 puts them on the raw logits, before temperature (30)."""
    register("banwords", bias.banwords, help="never generate these words: :use banwords salt pepper", order=25)
    register("boost", bias.boost, help="add a bias to words' logits: :use boost chicken 2.0", order=25)


@hookimpl
def register_cli_commands(cli: Any) -> None:
    """`recipe-repl log`."""
    cli.add_command(log.log_command)


@hookimpl
def on_prompt(sample_key: int) -> None:
    """A sample starts: note the time."""
    _started[sample_key] = time.perf_counter()


@hookimpl
def on_token(step: int, sample_key: int) -> None:
    """Note when the first word arrives."""
    if step == 0:
        _first_token[sample_key] = time.perf_counter()


@hookimpl
def on_sample_end(sample: Any) -> None:
    """Log the finished sample with its settings (one transaction)."""
    now = time.perf_counter()
    started = _started.pop(sample.key, None)
    first = _first_token.pop(sample.key, None)
    path = log.db_path()
    if path is None:
        return
    first_ms = (first - started) * 1000 if started is not None and first is not None else None
    duration_ms = (now - started) * 1000 if started is not None else None
    log.write(path, log.record(sample, first_ms, duration_ms))
