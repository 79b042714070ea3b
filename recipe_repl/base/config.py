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

from recipe_repl.base import atomic
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
        threads = data.get("threads")
        return cls(
            path,
            model=str(data["model"]) if "model" in data else None,
            provider=str(data["provider"]) if "provider" in data else None,
            threads=int(threads) if isinstance(threads, int) else None,
            settings=dict(settings),
            presets=_presets(path, data),
        )

    def starting_settings(self) -> Settings:
        """Settings from the [settings] table (validated)."""
        try:
            return Settings.from_mapping(self.settings)
        except UserError as exc:
            raise UserError(f"config {self.path}: {exc}") from None

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
            table = tomlkit.table()
            table.update(values)
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
        lock = self.path.with_name(f".{self.path.name}.lock")
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
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no file, or a file where a folder on the way should be
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None


def _read(path: Path) -> dict[str, Any] | None:
    text = _read_text(path)
    if text is None:
        return None
    import tomllib  # only when there is a file: start-up without one skips the parser

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config {path} is not valid TOML: {exc}") from None


def _presets(path: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    presets = data.get("presets", {})
    if not isinstance(presets, dict):
        raise UserError(f"config {path}: [presets] must be a table")
    return {str(k): dict(v) for k, v in presets.items() if isinstance(v, dict)}
