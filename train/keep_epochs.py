"""Which epochs `train --keep-epochs` keeps: every K-th (`--keep-epochs 2`), or a list (`1,2,4,8,last`).

A list keeps exactly the epochs it names, `last` being the run's last epoch (the one `--epochs` asks for):
the shipped model's run keeps 1, 2, 4, 8 and the last for the package's "watch it learn" models without
paying an export after every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recipe_repl.base.errors import UserError


@dataclass(frozen=True)
class KeepEpochs:
    """Every `every`-th epoch, or (every = 0) exactly `epochs`, and the last one when `last`."""

    every: int = 1
    epochs: frozenset[int] = field(default_factory=frozenset)
    last: bool = False

    def keeps(self, epoch: int, total: int) -> bool:
        """Whether epoch `epoch` (1-based) of a run of `total` epochs is kept."""
        if self.every:
            return epoch % self.every == 0
        return epoch in self.epochs or (self.last and epoch == total)

    @classmethod
    def parse(cls, text: str) -> KeepEpochs:
        """'K' (every K-th epoch) or a comma list of epochs and 'last'; a UserError when it is neither."""
        parts = [p.strip().lower() for p in str(text).split(",") if p.strip()]
        try:
            if len(parts) == 1 and parts[0] != "last":
                every = int(parts[0])
                if every < 1:
                    raise ValueError
                return cls(every=every)
            numbers = frozenset(int(p) for p in parts if p != "last")
            if not parts or min(numbers, default=1) < 1:
                raise ValueError
        except ValueError:
            raise UserError(f"--keep-epochs takes K (every K-th epoch, K >= 1) or a list of epochs such as "
                            f"1,2,4,8,last, not {text!r}") from None
        return cls(every=0, epochs=numbers, last="last" in parts)
