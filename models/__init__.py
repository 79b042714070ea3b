"""The shipped default model (`recipes.onnx`) and its model card."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = Path(__file__).with_name("recipes.onnx")
