"""A SQLite log of every sample, with its settings (as the `llm` CLI logs prompts).

The file is `$RECIPE_REPL_LOG_DB`, or `log.db` in recipe-repl's state folder
(`~/.local/state/recipe-repl/` by default); `RECIPE_REPL_LOG_DB=off` turns logging off. Every
sample is written in its own transaction, so a crash never leaves half an entry.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

ENV_DB = "RECIPE_REPL_LOG_DB"

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    datetime_utc TEXT NOT NULL,
    prompt TEXT NOT NULL,
    text TEXT NOT NULL,
    continuation TEXT NOT NULL,
    stop_reason TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    mean_logprob REAL,
    first_token_ms REAL,
    duration_ms REAL,
    settings_json TEXT NOT NULL
)
"""
COLUMNS = ("id", "datetime_utc", "prompt", "text", "continuation", "stop_reason", "tokens", "mean_logprob",
           "first_token_ms", "duration_ms", "settings_json")

_connections: dict[Path, sqlite3.Connection] = {}


def db_path() -> Path | None:
    """Where samples are logged, or None when logging is off."""
    value = os.environ.get(ENV_DB, "").strip()
    if value.lower() == "off":
        return None
    if value:
        return Path(os.path.expanduser(value))
    from recipe_repl.base.config import state_dir

    return state_dir() / "log.db"


def _connection(path: Path) -> sqlite3.Connection:
    """One connection per file and process, in WAL mode: a commit per sample stays cheap."""
    conn = _connections.get(path)
    if conn is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with conn:
            conn.execute(SCHEMA)
        _connections[path] = conn
    return conn


@atexit.register
def close_all() -> None:
    """Close the cached connections (at exit, and in tests)."""
    while _connections:
        _, conn = _connections.popitem()
        conn.close()


def record(sample: Any, first_token_ms: float | None, duration_ms: float | None) -> dict[str, Any]:
    """One log row for a finished sample."""
    logprobs = [math.log(p) for p in sample.probs if p > 0]
    return {
        "datetime_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "prompt": sample.prompt,
        "text": sample.text,
        "continuation": sample.continuation,
        "stop_reason": str(sample.stop_reason.value),
        "tokens": len(sample.token_ids),
        "mean_logprob": sum(logprobs) / len(logprobs) if logprobs else None,
        "first_token_ms": first_token_ms,
        "duration_ms": duration_ms,
        "settings_json": json.dumps(sample.settings.as_dict(), ensure_ascii=False),
    }


def write(path: Path, row: dict[str, Any]) -> None:
    """Append one row in its own transaction (committed, or rolled back on any error)."""
    try:
        conn = _connection(path)
        with conn:
            conn.execute(
                f"INSERT INTO samples ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
            )
    except (sqlite3.Error, OSError) as exc:
        conn = _connections.pop(path, None)
        if conn is not None:
            conn.close()
        raise RuntimeError(f"cannot write the sample log {path}: {exc}") from None


def last_entries(path: Path, count: int) -> list[dict[str, Any]]:
    """The newest `count` rows, oldest first."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            rows = conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM samples ORDER BY id DESC LIMIT ?", (count,)
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot read the sample log {path}: {exc}") from None
    entries = [dict(zip(COLUMNS, row, strict=True)) for row in reversed(rows)]
    for entry in entries:
        entry["settings"] = json.loads(entry.pop("settings_json"))
    return entries


def _summary(entry: dict[str, Any]) -> str:
    s = entry["settings"]
    parts = [f"temperature {s.get('temperature')}", f"seed {s.get('seed') if s.get('seed') is not None else 'off'}"]
    if s.get("top_k"):
        parts.append(f"top-k {s['top_k']}")
    if s.get("top_p", 1.0) < 1.0:
        parts.append(f"top-p {s['top_p']}")
    parts += [f"use {name} {' '.join(args)}".rstrip() for name, args in s.get("use", [])]
    return " · ".join(parts)


@click.command("log")
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=5, show_default=True,
              help="how many entries")
@click.option("--json", "json_out", is_flag=True, help="JSON Lines, one entry per line")
@click.option("--path", "show_path", is_flag=True, help="print where the log lives and stop")
def log_command(count: int, json_out: bool, show_path: bool) -> None:
    """Show the last samples logged by the recipe-repl-wordbias plugin."""
    path = db_path()
    if path is None:
        click.echo(f"sample logging is off ({ENV_DB}=off)", err=True)
        return
    if show_path:
        click.echo(str(path))
        return
    if not path.is_file():
        click.echo(f"no samples logged yet ({path})", err=True)
        return
    for entry in last_entries(path, count):
        if json_out:
            click.echo(json.dumps(entry, ensure_ascii=False))
            continue
        click.echo(f"#{entry['id']} {entry['datetime_utc']}  {_summary(entry)}")
        click.echo(f"  {entry['text']}")
        click.echo(f"  [{entry['tokens']} tokens · {entry['stop_reason']}]")
