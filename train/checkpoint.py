"""Atomic checkpoints: model weights (Keras `.weights.h5`, tagged with their epoch) and optimizer state."""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from recipe_repl.base import atomic
from recipe_repl.base.errors import UserError


def save(model: Any, optimizer: Any, epoch: int, weights_file: Path, optimizer_file: Path) -> None:
    """Save both files, each via a temp file + os.replace; the weights file records its epoch.

    The optimizer file goes first: if a kill lands between the two replaces, the weights are the
    older epoch and `load` sees the epochs differ and restarts the optimizer from the weights' epoch.
    """
    opt_vars = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
    with atomic.atomic_path(optimizer_file, suffix=".npz") as tmp:
        np.savez(tmp, epoch=np.int64(epoch), **opt_vars)  # type: ignore[arg-type]  # numpy's stub
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


def load(model: Any, optimizer: Any, weights_file: Path, optimizer_file: Path) -> tuple[int, bool]:
    """Load weights (and optimizer state when it belongs to the same epoch); returns (epoch, optimizer_restored).

    A weights file that is damaged or was saved for other sizes than `model` is a UserError; an
    optimizer file that cannot be used is skipped (the optimizer starts afresh from these weights).
    """
    with warnings.catch_warnings(record=True) as caught:  # Keras warns before it raises: one line is enough
        warnings.simplefilter("always")
        try:
            model.load_weights(str(weights_file))
            epoch = epoch_of(weights_file)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # h5py: OSError when truncated; Keras: ValueError
            raise UserError(f"cannot resume from {weights_file}: it is damaged or does not match the run's "
                            f"config.json ({_reason(exc)})") from None
    for w in caught:  # a load that worked keeps its warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if optimizer is None or not Path(optimizer_file).exists():
        return epoch, False
    try:
        with np.load(optimizer_file) as data:
            if int(data["epoch"]) != epoch or len(data.files) - 1 != len(optimizer.variables):
                return epoch, False
            values = [data[f"v{i}"] for i in range(len(optimizer.variables))]
        for v, value in zip(optimizer.variables, values, strict=True):
            if tuple(v.shape) != value.shape:
                return epoch, False
        for v, value in zip(optimizer.variables, values, strict=True):
            v.assign(value)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return epoch, False
    return epoch, True


def _reason(exc: Exception) -> str:
    """One short line from a Keras/h5py error (Keras' own message runs to pages of weights)."""
    text = str(exc)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    if shapes:
        return f"it holds weights of shape {shapes[2]} where the config's sizes need {shapes[1]}"
    return (text.strip().splitlines() or [type(exc).__name__])[0][:200]
