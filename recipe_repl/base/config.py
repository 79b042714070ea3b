"""The config file (`config.toml` in the user's config folder) and the history/state locations.

Where: `$XDG_CONFIG_HOME/recipe-repl/config.toml` when XDG_CONFIG_HOME is set, else the platform's
place (platformdirs): `~/.config/recipe-repl/` on Linux, `~/Library/Application Support/recipe-repl/`
on macOS. `RECIPE_REPL_CONFIG` names the file itself. History goes to the state folder the same way
(`XDG_STATE_HOME`, else `~/.local/state/recipe-repl/` on Linux).

Documented keys (all optional):

    model = "path/to/model.onnx"      # default model
    provider = "auto"                 # auto | cpu | cuda
    threads = 0                       # ONNX Runtime threads; 0 = automatic (1 in the REPL, 1 per core in batch)

    [settings]                        # starting generation settings (command-line flags win)
    temperature = 0.8
    top_k = 0
    top_p = 1.0
    min_p = 0.0
    repetition_penalty = 1.0
    max_tokens = 100
    seed = 42                         # or "off"
    n = 1
    allow_unk = true
    stop = "off"
    probs = "off"                     # off | first | every
    probs_n = 5
    raw = false

    [presets.NAME]                    # written by `:preset save NAME`; same keys as [settings]

The tool only ever changes one `[presets.NAME]` table, under a lock and re-reading the file first,
so two sessions saving at once both keep their presets, and the user's comments, unknown keys and
tables survive (tomlkit keeps the file's formatting).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipe_repl.base import atomic, reading
from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings

APP = "recipe-repl"
LOCK_TIMEOUT_S = 30.0  # another session holds the config lock only while it rewrites the file


def _from_env(variable: str) -> Path | None:
    """`$VARIABLE/recipe-repl` when the variable holds an absolute path (the XDG spec ignores relative ones).

    platformdirs honours XDG_* on Linux but not on macOS; honouring them everywhere lets a user (and
    the tests) move the folders on any platform.
    """
    base = os.environ.get(variable, "").strip()
    return Path(base) / APP if base and os.path.isabs(base) else None


def config_dir() -> Path:
    """The folder of the config file: `$XDG_CONFIG_HOME/recipe-repl`, else the platform's (platformdirs)."""
    from platformdirs import user_config_path

    return _from_env("XDG_CONFIG_HOME") or user_config_path(APP, appauthor=False)


def state_dir() -> Path:
    """The folder of the REPL history: `$XDG_STATE_HOME/recipe-repl`, else the platform's (platformdirs)."""
    from platformdirs import user_state_path

    return _from_env("XDG_STATE_HOME") or user_state_path(APP, appauthor=False)


def config_path() -> Path:
    """Where the config file lives (`RECIPE_REPL_CONFIG` overrides)."""
    override = os.environ.get("RECIPE_REPL_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


@dataclass
class Config:
    """The parsed config file."""

    path: Path
    model: str | None = None
    provider: str | None = None
    threads: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        """Read the config file; a missing file is an empty config, a broken one a UserError."""
        path = path or config_path()
        data = _read(path)
        if data is None:
            return cls(path)
        settings = data.get("settings", {})
        if not isinstance(settings, dict):
            raise UserError(f"config {path}: [settings] must be a table")
        return cls(
            path,
            model=_text(path, data, "model"),
            provider=_text(path, data, "provider"),
            threads=_threads(path, data),
            settings=dict(settings),
            presets=_presets(path, data),
        )

    def starting_settings(self) -> Settings:
        """Settings from the [settings] table (validated)."""
        try:
            return Settings.from_mapping(self.settings)
        except UserError as exc:
            raise UserError(f"config {self.path}: [settings]: {exc}") from None

    def preset(self, name: str) -> Settings:
        """A preset's settings (validated: a wrong key or type is one line naming the file and the key)."""
        try:
            return Settings.from_mapping(self.presets[name])
        except UserError as exc:
            raise UserError(f"config {self.path}: [presets.{name}]: {exc}") from None

    def save_preset(self, name: str, settings: Settings) -> None:
        """Store a preset in the file (only that table changes); on failure nothing changes here either.

        Raises OSError when the file cannot be written, UserError when it holds something else than TOML.
        """
        import tomlkit

        values = {k: v for k, v in settings.as_dict().items() if v is not None}

        def put(doc: Any) -> None:
            presets = doc.get("presets")
            if presets is None:
                presets = tomlkit.table(is_super_table=True)  # written as [presets.NAME], no empty [presets]
                doc["presets"] = presets
            elif not isinstance(presets, dict):
                raise UserError(f"config {self.path}: presets must be a table, not changing the file")
            elif isinstance(presets, tomlkit.items.InlineTable):
                raise UserError(f"config {self.path}: presets is an inline table (presets = {{...}}), not changing "
                                "the file: write each preset as a [presets.NAME] table so :preset save can add one")
            table = tomlkit.table()
            for key, value in values.items():
                table.add(key, toml_value(value))
            table.add(tomlkit.nl())
            presets[name] = table

        data = self.update_file(put)
        self.presets = _presets(self.path, data)  # other sessions' presets saved meanwhile too

    def update_file(self, change: Callable[[Any], None]) -> dict[str, Any]:
        """Read-modify-write the config file under a lock: re-read it, `change(document)`, write it atomically.

        `change` gets the tomlkit document, so everything it does not touch (comments, unknown keys
        and tables, formatting) is written back as it was. Returns the new content as plain data.
        """
        import tomlkit
        from tomlkit.exceptions import TOMLKitError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        real = atomic.resolve(self.path)  # a linked config is written through the link (atomic.resolve)
        lock = real.with_name(f".{real.name}.lock")
        try:
            with atomic.file_lock(lock, timeout=LOCK_TIMEOUT_S, note=str(os.getpid())):
                text = _read_text(self.path) or ""
                try:
                    doc = tomlkit.parse(text)
                except TOMLKitError as exc:
                    raise UserError(f"config {self.path} is not valid TOML, not changing it: {exc}") from None
                change(doc)
                atomic.write_text(self.path, tomlkit.dumps(doc))
        except atomic.Locked as exc:
            raise UserError(f"config {self.path} is being changed by another process ({exc.holder or 'pid unknown'});"
                            " try again") from None
        return dict(doc.unwrap())


def _read_text(path: Path) -> str | None:
    """The config's text through the one bounded reader (a FIFO or a huge file is one line); None if absent."""
    try:
        return reading.read_text(path, reading.CONFIG)
    except reading.NotFound:  # no file, or a file where a folder on the way should be
        return None


def _read(path: Path) -> dict[str, Any] | None:
    text = _read_text(path)
    if text is None:
        return None
    import tomllib  # only when there is a file: start-up without one skips the parser

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config {path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise UserError(f"config {path} is nested too deeply to read") from None


def _text(path: Path, data: dict[str, Any], key: str) -> str | None:
    """A string value of the config's top level, or None; another type is one line naming file and key."""
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str):
        raise UserError(f"config {path}: {key!r} must be a string, not {value!r}")
    return value


def _threads(path: Path, data: dict[str, Any]) -> int | None:
    if "threads" not in data:
        return None
    value = data["threads"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"config {path}: 'threads' must be a whole number (0 = automatic), not {value!r}")
    return value


def _presets(path: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    presets = data.get("presets", {})
    if not isinstance(presets, dict):
        raise UserError(f"config {path}: [presets] must be a table")
    for name, table in presets.items():
        if not isinstance(table, dict):
            raise UserError(f"config {path}: presets.{name} must be a table of settings, not {table!r}")
    return {str(k): dict(v) for k, v in presets.items()}


def toml_value(value: Any) -> Any:
    """A value for tomlkit; strings are written with every unsafe character as a TOML escape (\\u202e).

    tomlkit writes bidi overrides and C1 controls raw, and the file is read in editors and terminals
    (`cat config.toml`): escaped, the file still reads back to the same string.
    """
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        import tomlkit

        array = tomlkit.array()
        for item in value:
            array.append(toml_value(item))
        return array
    return value


def _toml_string(text: str) -> Any:
    import tomlkit
    from tomlkit.items import String, StringType, Trivia

    from recipe_repl.base.sanitize import is_unsafe

    if not any(is_unsafe(ch) or ch in '"\\' for ch in text):
        return tomlkit.string(text)
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate has no TOML spelling: the replacement character
            out.append("\\ufffd")
        elif is_unsafe(ch):
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return String(StringType.SLB, text, "".join(out), Trivia())
