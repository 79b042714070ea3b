"""The one writer for files that must not be lost: atomic replaces and a cross-process lock.

Every file the project writes for keeps — the config, `:save`, presets, checkpoints, run files,
exported models, model cards — goes through `atomic_path` (or `write_text`/`write_bytes`): the data
goes to a temp file beside the target, is flushed to disk, then `os.replace`s the target, so a crash
leaves the old file or the new one, never half of one. A new file gets the permissions the umask
gives (as `open` would); a file that is replaced keeps its own mode.

A target that is a symbolic link is written *through* the link (`resolve`): the file the link
points to is replaced, beside itself, and the link stays (a config kept in a dotfiles folder and
linked into place keeps working). The messages of `:save` and `:preset save` say so.

`file_lock` serialises read-modify-write between processes (two sessions saving presets) and keeps
a second training run out of a run folder in use. POSIX only (Linux, macOS), through `fcntl.flock`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path


def resolve(target: Path) -> Path:
    """Where a write to `target` lands: the file a symbolic link points to (followed to the end), else `target`."""
    target = Path(target)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str = "", *, parents: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target`, on error it is removed.

    `suffix` lets libraries that check the name (Keras wants `.weights.h5`) accept the temp file.
    `parents` creates missing folders; without it a missing folder is a FileNotFoundError.
    A symbolic link is written through (`resolve`).
    """
    target = resolve(Path(target))
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here, not at import: it pulls in shutil, bz2 and lzma (~4 ms of every start-up)

    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _mode_for(target))  # mkstemp makes 0600
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def write_text(target: Path, text: str, *, parents: bool = False) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    write_bytes(target, text.encode("utf-8"), parents=parents)


def write_bytes(target: Path, data: bytes, *, parents: bool = False) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target, parents=parents) as tmp:
        tmp.write_bytes(data)


def check_writable(target: Path, *, parents: bool = False) -> None:
    """Raise OSError now unless `atomic_path(target)` could write there (before hours of work, not after)."""
    target = Path(target)
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    with tempfile.TemporaryFile(prefix=f".{target.name}.", suffix=".probe", dir=target.parent):
        pass


def umask() -> int:
    """The process umask, read without changing it where the system allows (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore, the only portable way to read it
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~umask()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # makes the rename itself durable; some systems cannot open or sync a folder, which is fine
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Locked(Exception):
    """Another process holds the lock; `holder` is what it wrote into the lock file (its pid)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path, self.holder = path, holder


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None, note: str = "") -> Iterator[None]:
    """Hold an exclusive lock on the file `path` across processes; the file is removed on release.

    `timeout` None waits as long as it takes; otherwise `Locked` is raised after that many seconds
    (0: at once). `note` (e.g. the pid) is written into the lock file for whoever finds it locked.
    """
    import fcntl

    path = Path(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _read_note(fd)
            os.close(fd)
            if deadline is not None and time.monotonic() >= deadline:
                raise Locked(path, holder) from None
            time.sleep(0.05)
            continue
        except BaseException:
            os.close(fd)
            raise
        # The holder before us removes the file when it lets go: if we locked a file that is no
        # longer at `path`, a newcomer may lock the new one, so start again on the file now there.
        try:
            current = os.stat(path)
            opened = os.fstat(fd)
            same = (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        if note:
            os.ftruncate(fd, 0)
            os.pwrite(fd, note.encode("utf-8"), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # before closing, so nobody can lock the old file and think it is current
        os.close(fd)


def _read_note(fd: int) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return os.pread(fd, 200, 0).decode("utf-8").strip()
    return ""
