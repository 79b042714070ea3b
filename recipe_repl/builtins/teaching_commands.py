"""Built-in teaching commands: :probs, :compare, :pick (filled in with the REPL)."""

from __future__ import annotations

from typing import Any

from recipe_repl.hookspecs import hookimpl


@hookimpl
def register_commands(register: Any) -> None:
    """Registered in the REPL work."""
