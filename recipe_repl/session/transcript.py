"""What a session keeps for `:save`: its prompts, commands and samples, within a memory bound.

Batch mode's input may be endless, so the record is bounded for every frontend: it keeps the
entries of the last `KEEP_TOKENS` generated tokens (each entry also counts one, so commands count)
and drops the oldest entries beyond that, counting them so `:save` can say what it no longer has.
The newest entry is always kept whole.

The bound counts what an entry really holds: a record with `--top-alternatives N` carries N words
with their ids and probabilities at every step, each two to three times a token's memory (measured:
~268 bytes against ~127 with the model's probabilities beside the sampling ones), so each
alternative counts `ALTERNATIVE_WEIGHT` tokens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KEEP_TOKENS = 500_000  # measured 3.9 KiB per 100-token sample: 5,000 such samples, about 20 MiB
ALTERNATIVE_WEIGHT = 3  # one of the top alternatives recorded at a step, in tokens


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
        self._drop()

    def _drop(self) -> None:
        while self._weight > self.limit and len(self._entries) > 1:
            self._weight -= _weight(self._entries.popleft())
            self.dropped += 1

    def extend_last(self, entry: TranscriptEntry, samples: list[dict[str, Any]]) -> bool:
        """Add samples to `entry` if it is still the newest entry (a prompt's samples that finished in
        two batches) and stays within the bound; False, changing nothing, otherwise (a new entry then
        holds them: one entry alone never outgrows the bound by more than a batch)."""
        if not self._entries or self._entries[-1] is not entry:
            return False
        added = _weight(TranscriptEntry(entry.kind, entry.text, {}, samples)) - 1
        if _weight(entry) + added > self.limit:
            return False
        entry.samples.extend(samples)
        self._weight += added
        self._drop()
        return True

    def __iter__(self) -> Iterator[TranscriptEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _weight(entry: TranscriptEntry) -> int:
    """1, plus every token of its samples, plus `ALTERNATIVE_WEIGHT` for each recorded alternative."""
    weight = 1
    for sample in entry.samples:
        weight += len(sample.get("tokens", ()))
        weight += ALTERNATIVE_WEIGHT * sum(len(step) for step in sample.get("top_alternatives", ()))
    return weight
