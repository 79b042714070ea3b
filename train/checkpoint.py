"""Atomic checkpoints: model weights (Keras `.weights.h5`, tagged with their epoch) and optimizer state."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recipe_repl import atomic


def save(model, optimizer, epoch: int, weights_file: Path, optimizer_file: Path) -> None:
    """Save both files, each via a temp file + os.replace; the weights file records its epoch.

    The optimizer file goes first: if a kill lands between the two replaces, the weights are the
    older epoch and `load` sees the epochs differ and restarts the optimizer from the weights' epoch.
    """
    opt_vars = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
    with atomic.atomic_path(optimizer_file, suffix=".npz") as tmp:
        np.savez(tmp, epoch=np.int64(epoch), **opt_vars)
    with atomic.atomic_path(weights_file, suffix=".weights.h5") as tmp:
        tmp.unlink()  # Keras/h5py want to create the file themselves
        model.save_weights(str(tmp))
        import h5py

        with h5py.File(tmp, "a") as f:
            f.attrs["recipe_repl_epoch"] = int(epoch)


def epoch_of(weights_file: Path) -> int:
    """The epoch a weights file was saved after (0 when it carries none)."""
    import h5py

    with h5py.File(weights_file, "r") as f:
        return int(f.attrs.get("recipe_repl_epoch", 0))


def load(model, optimizer, weights_file: Path, optimizer_file: Path) -> tuple[int, bool]:
    """Load weights (and optimizer state when it belongs to the same epoch); returns (epoch, optimizer_restored)."""
    model.load_weights(str(weights_file))
    epoch = epoch_of(weights_file)
    if optimizer is None or not Path(optimizer_file).exists():
        return epoch, False
    with np.load(optimizer_file) as data:
        if int(data["epoch"]) != epoch or len(data.files) - 1 != len(optimizer.variables):
            return epoch, False
        for i, v in enumerate(optimizer.variables):
            v.assign(data[f"v{i}"])
    return epoch, True
