"""tf.distribute strategies: default, mirrored over local devices, multi-worker from TF_CONFIG."""

from __future__ import annotations

import json
import os
from typing import Any

from recipe_repl.base.errors import UserError

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(name: str) -> Any:
    """Create the strategy (call before building any TF state)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy multi-worker needs the TF_CONFIG environment variable (cluster and task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (only the chief writes the run folder)."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    except ValueError:
        return True
    return task.get("type", "worker") in ("chief", "worker") and (
        task.get("type") == "chief" or int(task.get("index", 0)) == 0
    )
