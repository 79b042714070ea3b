"""The shipped default model (`recipes.onnx`), its model card, and a few epochs of its run (`epochs/`)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = Path(__file__).with_name("recipes.onnx")
EPOCHS_DIR = Path(__file__).with_name("epochs")  # int8 epochs of the shipped run (`make epochs`), if shipped


def shipped_epochs(folder: Path | None = None) -> list[Path]:
    """The shipped epoch files (`epoch-NNN.onnx`), in epoch order; none when no epochs were shipped."""
    folder = EPOCHS_DIR if folder is None else folder
    return sorted(folder.glob("epoch-*.onnx")) if folder.is_dir() else []
