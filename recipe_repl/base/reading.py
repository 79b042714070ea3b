"""The one reader for files from outside: regular files only, within a size limit stated per kind.

Every file the tool reads because a user or a file named it — the config, a vocabulary (`--vocab`),
texts to score, a model, a corpus, `:cells find`'s texts, a run folder's files — comes through here:

- **Regular files only.** A path is looked at with `os.stat` first, then opened without blocking
  (`O_NONBLOCK`: opening a FIFO for reading would otherwise wait for a writer forever) and checked
  again with `fstat` on what was really opened. A FIFO, a device (`/dev/zero`), a socket or a folder
  is one line naming it.
- **Within a size limit per kind** (`Kind`, the table below): checked against the file's size before
  reading, and again while reading (a file that grows, or a /proc file that says 0). Line-by-line
  readers (`lines`) stream, so a large corpus never sits in memory twice; they bound each line too.
- **Decoded strictly**: text must be UTF-8, and a bad byte is one line naming the file and the line.
- **Parsed safely**: `parse_json` turns malformed or too deeply nested JSON (200,000 brackets make
  Python's decoder raise RecursionError) into one line naming where it came from.

Stdin (`score -`) goes through the same line reader (`stream_lines`), with the same bounds.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from recipe_repl.base.errors import UserError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Kind:
    """What a file is for, and how much of it the tool reads at most."""

    what: str  # how messages name it: "vocabulary", "config", ...
    max_bytes: int  # the whole file
    max_line_bytes: int = 16 * MiB  # one line, for the streaming readers


# The limits, one per kind (README "Untrusted text" lists them).
CONFIG = Kind("config", 1 * MiB)
VOCAB = Kind("vocabulary", 64 * MiB)  # a 5,000-word vocabulary is 40 KB; a million words about 10 MB
MODEL = Kind("model", 2 * GiB - 1)  # ONNX's own limit (one protobuf message)
SCORE_TEXTS = Kind("texts to score", 1 * GiB)  # streamed: memory holds one line at a time
CELL_TEXTS = Kind("texts for :cells find", 5 * 1000 * 1000)  # a few thousand recipes
CORPUS = Kind("corpus", 2 * GiB)  # text:/jsonl: files, streamed line by line
CORPUS_JSON = Kind("corpus", 256 * MiB)  # a JSON document is parsed whole (Epicurious' is 34 MB)
RUN_FILE = Kind("run file", 64 * MiB)  # a run folder's config.json, vocab.json, ...

_KINDS_OF_FILE = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class NotFound(UserError):
    """The file (or a folder on its path) does not exist."""


def _size_text(n: int) -> str:
    if n >= GiB:
        return f"{n / GiB:g} GiB"
    if n >= MiB:
        return f"{n / MiB:g} MiB"
    if n >= 1000 * 1000 and n % (1000 * 1000) == 0:
        return f"{n // (1000 * 1000)} MB"
    return f"{n / KiB:g} KiB" if n >= KiB else f"{n} bytes"


def limit_text(kind: Kind) -> str:
    """The kind's size limit in words ("64 MiB")."""
    return _size_text(kind.max_bytes)


def label(path: Path | str, kind: Kind) -> str:
    """How messages name a file: its path, then what it is for."""
    return f"{path} ({kind.what})"


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode cannot be read (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS_OF_FILE.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: Path | str, kind: Kind, error: type[UserError] = UserError) -> IO[bytes]:
    """Open a regular file for reading (binary), or raise `error` (NotFound when it does not exist).

    Never blocks: a FIFO is refused before it is opened, and the open itself is non-blocking in
    case the path changed in between; what was opened is checked again.
    """
    name = label(path, kind)
    try:
        before = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"cannot read {name}: not found") from None
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
    why = _not_regular(before.st_mode)
    if why is not None:
        raise error(f"cannot read {name}: it is {why}, not a regular file")
    _check_size(before.st_size, kind, name, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        opened = os.fstat(fd)
        why = _not_regular(opened.st_mode)
        if why is not None:
            raise error(f"cannot read {name}: it is {why}, not a regular file")
        _check_size(opened.st_size, kind, name, error)
        os.set_blocking(fd, True)  # a regular file never blocks; reads behave as usual from here
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_size(size: int, kind: Kind, name: str, error: type[UserError]) -> None:
    if size > kind.max_bytes:
        raise error(f"{name} is {_size_text(size)}, over the {_size_text(kind.max_bytes)} limit for a {kind.what} file")


def read_bytes(path: Path | str, kind: Kind, error: type[UserError] = UserError) -> bytes:
    """A regular file's bytes, at most `kind.max_bytes` (else `error`)."""
    with open_regular(path, kind, error) as f:
        try:
            data = f.read(kind.max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read {label(path, kind)}: {exc.strerror or exc}") from None
    if len(data) > kind.max_bytes:  # it grew, or said it was empty (/proc)
        raise error(f"{label(path, kind)} is over the {_size_text(kind.max_bytes)} limit for a {kind.what} file")
    return data


def decode(data: bytes, name: str, error: type[UserError] = UserError) -> str:
    """UTF-8 text, or `error` naming `name` and the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None


def read_text(path: Path | str, kind: Kind, error: type[UserError] = UserError) -> str:
    """A regular file as UTF-8 text, within the kind's size limit."""
    return decode(read_bytes(path, kind, error), label(path, kind), error)


def lines(path: Path | str, kind: Kind, error: type[UserError] = UserError) -> Iterator[str]:
    """A regular file's lines (as `str.splitlines` splits them), streamed: memory holds one line at a time."""
    with open_regular(path, kind, error) as f:
        yield from stream_lines(f, label(path, kind), kind, error)


def stream_lines(stream: IO[bytes], name: str, kind: Kind, error: type[UserError] = UserError) -> Iterator[str]:
    """The lines of a byte stream (a file or stdin), each decoded strictly, within the kind's bounds.

    Split as `str.splitlines` splits a whole text (so results match reading the text at once), but
    read one newline-ended line at a time: no line over `kind.max_line_bytes`, no more than
    `kind.max_bytes` in all.
    """
    total = 0
    number = 0
    while True:
        try:
            raw = stream.readline(kind.max_line_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read {name}: {exc.strerror or exc}") from None
        if not raw:
            return
        number += 1
        total += len(raw)
        if len(raw) > kind.max_line_bytes and not raw.endswith(b"\n"):
            raise error(f"line {number} of {name} is over the {_size_text(kind.max_line_bytes)} limit for a line")
        if total > kind.max_bytes:
            raise error(f"{name} is over the {_size_text(kind.max_bytes)} limit for a {kind.what} file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {number})") from None
        yield from text.splitlines()


def parse_json(text: str | bytes, name: str, error: type[UserError] = UserError) -> Any:
    """`json.loads`, with malformed or too deeply nested JSON as one line naming `name`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{name} is not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise error(f"{name} is nested too deeply to read (JSON arrays or objects inside one another)") from None
    except UnicodeDecodeError:
        raise error(f"{name} is not UTF-8 text") from None


def read_json(path: Path | str, kind: Kind, error: type[UserError] = UserError) -> Any:
    """A regular file's JSON, within the kind's size limit."""
    return parse_json(read_text(path, kind, error), label(path, kind), error)
