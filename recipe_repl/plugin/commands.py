"""The `:command` registry and parser shared by the REPL and batch mode."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from recipe_repl.base.errors import BadValue, UsageError, UserError

# A handler gets the session and the raw argument text (everything after the name, stripped).
# The session is `Any` here: `recipe_repl.session.session` sits above this module and imports it, so naming
# it, even for type checkers only, would close an import cycle (`session.CommandHandler` is exact).
Handler = Callable[[Any, str], None]
# A completer gets the session and the argument text typed so far; it returns candidate arguments.
Completer = Callable[[Any, str], Iterable[str]]


@dataclass(frozen=True)
class CommandSpec:
    """A `:name` command as registered through the `register_commands` hook."""

    name: str
    handler: Handler
    help: str = ""  # one line, shown by `:help`
    usage: str = ""  # e.g. ":temp T"; defaults to ":name"
    example: str = ""  # a typical use, e.g. ":temp 0.7": errors about a bad value end with it
    details: str = ""  # longer text for `:help NAME`
    complete: Completer | None = None
    aliases: tuple[str, ...] = ()
    interactive_only: bool = False  # e.g. `:pick`, which needs a person at the keyboard
    essential: bool = False  # a built-in that no plugin may override (`:quit`, `:help`)
    plugin: str = "builtin"  # the plugin manager names it; `hookcall.is_builtin` tells built-ins

    @property
    def synopsis(self) -> str:
        """Usage text for help listings."""
        return self.usage or f":{self.name}"


def is_command(line: str) -> bool:
    """Whether an input line is a `:command` rather than a prompt."""
    return line.lstrip().startswith(":")


def parse_command(line: str) -> tuple[str, str]:
    """Split ':name args…' into ('name', 'args…'); the name is lower-cased."""
    body = line.strip()
    if not body.startswith(":"):
        raise UserError("commands start with ':'")
    name, _, args = body[1:].partition(" ")
    name = name.strip().lower()
    if not name:
        raise UserError("empty command: type :help for the list")
    return name, args.strip()


MAX_QUOTED_ARGS = 64 * 1024  # characters of arguments with quotes: shlex takes quadratic time on a long word
_SHLEX_SPACE = re.compile("[ \t\r\n]+")  # what shlex splits on


def split_args(args: str) -> list[str]:
    """Shell-like split of an argument string; a stray quote is a UsageError, not a crash.

    Arguments without quotes or backslashes are split as shlex would, without shlex: it builds each
    word a character at a time (a 1 MB word took over a minute). Quoted arguments over
    `MAX_QUOTED_ARGS` characters are refused.
    """
    if not any(ch in args for ch in "'\"\\"):
        return [part for part in _SHLEX_SPACE.split(args) if part]
    if len(args) > MAX_QUOTED_ARGS:
        raise UsageError(f"the arguments are over {MAX_QUOTED_ARGS // 1024} KiB with quotes in them")
    try:
        return shlex.split(args)
    except ValueError as exc:
        raise UsageError(f"cannot read the arguments: {str(exc).lower()}") from None


def no_args(args: str) -> None:
    """For a command that takes no arguments: anything after its name is a UsageError, not ignored."""
    if args.strip():
        raise UsageError("no arguments expected")


def one_arg(args: str) -> str:
    """The one word after a command's name; none or several is a UsageError."""
    parts = args.split()
    if len(parts) != 1:
        raise UsageError("" if not parts else "too many arguments")
    return parts[0]


def count_arg(text: str, what: str) -> int:
    """A count from 1 to 100 (rows of a table, samples); a BadValue otherwise."""
    try:
        n = int(text)
    except ValueError:
        raise BadValue(f"{what} must be a whole number, not {text!r}") from None
    if not 1 <= n <= 100:
        raise BadValue(f"{what} must be between 1 and 100")
    return n


COMPARE_ROWS = 8  # rows of :compare and :compare-models unless `rows N` says otherwise (their own, not :probs')


def rows_option(parts: list[str], default: int = COMPARE_ROWS) -> tuple[list[str], int]:
    """A trailing `rows N` split off a command's arguments: (the other arguments, N or `default`).

    Each table command has its own row count (`:compare … rows 8`), so setting one never changes another.
    """
    if len(parts) >= 2 and parts[-2].lower() == "rows":
        return parts[:-2], count_arg(parts[-1], "the number of rows")
    if parts and parts[-1].lower() == "rows":
        raise UsageError("rows takes a number, e.g. rows 8")
    return parts, default


def explain(spec: CommandSpec, exc: UserError) -> str:
    """The one-line message for an error raised by `spec`'s handler, with the fix where there is one.

    A UsageError gets the command's usage and `(see :help NAME)`; a BadValue gets an example of a
    good value (its own, else the command's), or `(see :help NAME)` when there is none; any other
    UserError already says what to do and is left as it is.
    """
    see = f"(see :help {spec.name})"
    if isinstance(exc, UsageError):
        reason = f"{exc.reason} — " if exc.reason else ""
        example = f", e.g. {spec.example}" if spec.example else ""
        return f"{reason}usage: {spec.synopsis}{example} {see}"
    if isinstance(exc, BadValue):
        example = exc.example or spec.example
        return f"{exc.message} — e.g. {example}" if example else f"{exc.message} {see}"
    return str(exc)


class CommandTable:
    """Commands by name and alias, with closest-name suggestions."""

    def __init__(self) -> None:
        self._by_name: dict[str, CommandSpec] = {}
        self._alias: dict[str, str] = {}

    def add(self, spec: CommandSpec, override: bool = False) -> None:
        """Add a command; a clash with an existing name raises ValueError unless `override`."""
        names = (spec.name, *spec.aliases)
        for n in names:
            current = self.get(n)
            if current is None:
                continue
            if current.essential:
                raise ValueError(f":{n} is an essential built-in and cannot be replaced")
            if not override:
                raise ValueError(f":{n} is already registered by {current.plugin} (ask for override to replace it)")
        for n in names:
            existing = self.get(n)
            if existing is not None:
                self._remove(existing)
        self._by_name[spec.name] = spec
        for a in spec.aliases:
            self._alias[a] = spec.name

    def _remove(self, spec: CommandSpec) -> None:
        self._by_name.pop(spec.name, None)
        for a in spec.aliases:
            self._alias.pop(a, None)

    def get(self, name: str) -> CommandSpec | None:
        """The command for a name or alias, or None."""
        return self._by_name.get(self._alias.get(name, name))

    def names(self) -> list[str]:
        """Every command name (no aliases), sorted."""
        return sorted(self._by_name)

    def all_names(self) -> list[str]:
        """Names and aliases, sorted: what completion offers."""
        return sorted([*self._by_name, *self._alias])

    def specs(self) -> list[CommandSpec]:
        """Every command, sorted by name."""
        return [self._by_name[n] for n in self.names()]

    def closest(self, name: str) -> str | None:
        """The name or alias nearest to a mistyped one, or None when none is near."""
        close = close_matches(name, self.all_names(), n=1, cutoff=0.5)
        return close[0] if close else None

    def lookup(self, name: str) -> CommandSpec:
        """The command for a name, or a UserError naming the closest one."""
        spec = self.get(name)
        if spec is not None:
            return spec
        close = self.closest(name)
        hint = f" — did you mean :{close}?" if close else " — type :help for the list"
        raise UserError(f"unknown command :{name}{hint}")


def close_matches(word: str, choices: list[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """difflib's suggestions, imported only when a name was mistyped (it is not free at start-up)."""
    import difflib

    return [str(m) for m in difflib.get_close_matches(word, choices, n=n, cutoff=cutoff)]
