"""Generation settings: one frozen dataclass, changed only through `dataclasses.replace`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from recipe_repl.base.errors import BadValue, UserError

PROBS_MODES = ("off", "first", "every")

# Below this temperature a sample is greedy (the most likely word), as at 0: dividing float32 logits by
# less overflows them (1e-40 gave infinities, then NaN), and long before that the draw is the top word
# anyway (at 1e-3 a word whose logit is 0.05 below the top one has e^-50 of its probability).
GREEDY_BELOW = 1e-3


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a sample; shown by `:settings`, saved by `:preset save`."""

    temperature: float = 1.0  # 0 (or below GREEDY_BELOW) = greedy; logits are divided by it
    top_k: int = 0  # keep the k most likely words; 0 = off
    top_p: float = 1.0  # keep the smallest set with this much probability; 1 = off
    min_p: float = 0.0  # drop words below min_p × the top word's probability; 0 = off
    repetition_penalty: float = 1.0  # >1 discourages words already generated; 1 = off
    max_tokens: int = 100  # generated tokens only (the lecture's max_tokens counts the prompt too)
    seed: int | None = None  # None = fresh randomness each run
    n: int = 1  # samples per prompt
    allow_unk: bool = True  # let the model emit [UNK] (visible, for teaching); False bans it
    stop: str | None = None  # a stop string: the sample ends once its text contains it
    probs: str = "off"  # probability tables during generation: off | first | every
    probs_n: int = 5  # rows in those tables
    raw: bool = False  # show raw tokens instead of readable text
    beam: int = 0  # beam search of this width instead of sampling; 0 = off (sample)
    length_penalty: float = 1.0  # beams rank by log-probability / length ** this (1 = mean log-probability)
    use: tuple[tuple[str, tuple[str, ...]], ...] = ()  # extra processors by name, with their arguments

    def validate(self) -> Settings:
        """Raise BadValue (a UserError) for an out-of-range value; return self so it chains.

        In a `:command` the session adds the command's example to the message (`e.g. :temp 0.7`).
        """
        checks = [
            (0 <= self.temperature <= 5, "temperature must be between 0 and 5"),
            (self.top_k >= 0, "top-k must be 0 (off) or a positive count"),
            (0 < self.top_p <= 1, "top-p must be in (0, 1]"),
            (0 <= self.min_p < 1, "min-p must be in [0, 1)"),
            (0 < self.repetition_penalty <= 10, "repetition penalty must be in (0, 10]"),
            (1 <= self.max_tokens <= 100_000, "max tokens must be between 1 and 100000"),
            (self.seed is None or 0 <= self.seed < 2**63, "seed must be a non-negative integer"),
            (1 <= self.n <= 10_000, "n must be between 1 and 10000"),
            (self.probs in PROBS_MODES, f"probs must be one of {', '.join(PROBS_MODES)}"),
            (1 <= self.probs_n <= 100, "probability tables show 1 to 100 rows"),
            (0 <= self.beam <= 64, "beam width must be between 0 (off) and 64"),
            (0 <= self.length_penalty <= 5, "length penalty must be between 0 and 5"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadValue(message)
        return self

    @property
    def greedy(self) -> bool:
        """Whether these settings choose the most likely word: temperature 0, or below `GREEDY_BELOW`."""
        return self.temperature < GREEDY_BELOW

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes).validate()

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON, TOML and display."""
        data = dataclasses.asdict(self)
        data["use"] = [[name, list(args)] for name, args in self.use]
        return data

    @classmethod
    def from_mapping(cls, data: dict[str, Any], base: Settings | None = None) -> Settings:
        """Settings from a config table; unknown keys and wrong types are a UserError."""
        base = base or cls()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in fields:
                raise UserError(f"unknown setting {key!r}")
            current = getattr(base, name)
            if name == "use":
                changes[name] = _use(key, value)
            elif name == "stop":
                changes[name] = None if value in (None, "off", "") else _text(key, value)
            elif name == "seed":
                changes[name] = None if value in (None, "off", "") else _whole_number(key, value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise UserError(f"setting {key!r} must be true or false, not {value!r}")
                changes[name] = value
            elif isinstance(current, int):
                changes[name] = _whole_number(key, value)
            elif isinstance(current, float):
                changes[name] = _number(key, value)
            else:
                changes[name] = _text(key, value)
        return dataclasses.replace(base, **changes).validate()


def _whole_number(key: str, value: Any) -> int:
    """An integer from a config value: 42 or "42"; not true, 1.5, "abc" or [1, 2]."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    off = ' or "off"' if key.replace("-", "_") == "seed" else ""
    raise UserError(f"setting {key!r} must be a whole number{off}, not {value!r}")


def _number(key: str, value: Any) -> float:
    """A float from a config value: 0.7 or 1; not true, "0.7", nan or [1]."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise UserError(f"setting {key!r} must be a number, not {value!r}")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UserError(f"setting {key!r} must be a string, not {value!r}")
    return value


def _use(key: str, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`use` from a config value: a list of [name, [args...]] with strings only."""
    bad = UserError(f"setting {key!r} must be a list of [name, [args...]], not {value!r}")
    if not isinstance(value, list | tuple):
        raise bad
    out = []
    for entry in value:
        if not isinstance(entry, list | tuple) or len(entry) != 2 or not isinstance(entry[0], str):
            raise bad
        name, args = entry
        if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
            raise bad
        out.append((name, tuple(args)))
    return tuple(out)
