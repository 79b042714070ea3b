"""The config file (`~/.config/recipe-repl/config.toml`, XDG) and the history/state locations.

Documented keys (all optional):

    model = "path/to/model.onnx"      # default model
    provider = "auto"                 # auto | cpu | cuda
    threads = 0                       # ONNX Runtime intra-op threads, 0 = its default

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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipe_repl.errors import UserError
from recipe_repl.settings import Settings

APP = "recipe-repl"


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/recipe-repl`, defaulting to `~/.config/recipe-repl`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP


def state_dir() -> Path:
    """`$XDG_STATE_HOME/recipe-repl`, defaulting to `~/.local/state/recipe-repl` (REPL history)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP


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
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):  # no file, or a file where a folder on the way should be
            return cls(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read config {path}: {exc}") from None
        import tomllib  # only when there is a file: start-up without one skips the parser

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config {path} is not valid TOML: {exc}") from None
        settings = data.get("settings", {})
        presets = data.get("presets", {})
        if not isinstance(settings, dict) or not isinstance(presets, dict):
            raise UserError(f"config {path}: [settings] and [presets] must be tables")
        threads = data.get("threads")
        return cls(
            path,
            model=str(data["model"]) if "model" in data else None,
            provider=str(data["provider"]) if "provider" in data else None,
            threads=int(threads) if isinstance(threads, int) else None,
            settings=dict(settings),
            presets={str(k): dict(v) for k, v in presets.items() if isinstance(v, dict)},
        )

    def starting_settings(self) -> Settings:
        """Settings from the [settings] table (validated)."""
        try:
            return Settings.from_mapping(self.settings)
        except UserError as exc:
            raise UserError(f"config {self.path}: {exc}") from None

    def save_preset(self, name: str, settings: Settings) -> None:
        """Store a preset and rewrite the file atomically."""
        data = {k: v for k, v in settings.as_dict().items() if v is not None}
        self.presets[name] = data
        self.write()

    def write(self) -> None:
        """Write the whole config back, atomically (temp file + rename)."""
        lines: list[str] = []
        for key in ("model", "provider", "threads"):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        for table, values in [("settings", self.settings), *[(f"presets.{_toml_key(k)}", v) for k, v in
                                                             sorted(self.presets.items())]]:
            if not values and table != "settings":
                continue
            if not values:
                continue
            lines.append(f"\n[{table}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items())
        atomic_write_text(self.path, "\n".join(lines).lstrip("\n") + "\n")


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "-_" for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    escaped = "".join(
        {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c, c)
        if c in '\\"\n\t\r' or c.isprintable()
        else f"\\u{ord(c):04x}"
        for c in text
    )
    return f'"{escaped}"'


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that a crash leaves either the old or the new content, never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Bytes version of `atomic_write_text`."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
