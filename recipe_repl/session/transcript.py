"""What a session keeps for `:save`: its prompts, commands and samples, within a memory bound.

Batch mode's input may be endless, so the record is bounded for every frontend: it keeps the
entries of the last `KEEP_TOKENS` generated tokens (each entry also counts one, so commands count)
and drops the oldest entries beyond that, counting them so `:save` can say what it no longer has.
The newest entry is always kept whole.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KEEP_TOKENS = 500_000  # measured 3.9 KiB per 100-token sample: 5,000 such samples, about 20 MiB


@dataclass
class TranscriptEntry:
    """One thing that happened, for `:save`."""

    kind: str  # "prompt" or "command"
    text: str
    settings: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)


class Transcript:
    """The session's entries in order, the oldest dropped once they hold more than `limit` tokens."""

    def __init__(self, limit: int = KEEP_TOKENS) -> None:
        self.limit = limit
        self.dropped = 0  # entries dropped to stay within the limit
        self._entries: deque[TranscriptEntry] = deque()
        self._weight = 0

    def append(self, entry: TranscriptEntry) -> None:
        """Add an entry, dropping the oldest ones while the record is over its limit."""
        self._entries.append(entry)
        self._weight += _weight(entry)
        while self._weight > self.limit and len(self._entries) > 1:
            self._weight -= _weight(self._entries.popleft())
            self.dropped += 1

    def __iter__(self) -> Iterator[TranscriptEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _weight(entry: TranscriptEntry) -> int:
    return 1 + sum(len(sample.get("tokens", ())) for sample in entry.samples)
