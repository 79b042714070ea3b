"""The environment TensorFlow reads once, when it is first imported: set it before that import.

TensorFlow's C++ side prints INFO and WARNING lines (oneDNN, CPU features, absl's "All log messages
before absl::InitializeLog()" notice, the tf.data memory patch) between the tool's own lines. They
say nothing a user of `recipe-repl train/export/eval` can act on, so they are off unless --verbose.
"""

from __future__ import annotations

import os

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"  # 0 = everything, 1 = no INFO, 2 = errors only, 3 = nothing


def set_native_logging(verbose: bool = False) -> None:
    """Errors only by default, everything with `verbose`; a level the user set in the environment wins.

    Has no effect once TensorFlow is imported in this process, so call it first thing in a command.
    """
    os.environ.setdefault(LOG_LEVEL, "0" if verbose else "2")


ONEDNN = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> None:
    """oneDNN's CPU kernels on for training (a value the user set in the environment wins).

    TensorFlow leaves them off on some CPUs (this project's 2-core AMD machine among them); there the
    training loop ran 1.5-2x the real tokens/s with them (`benchmarks/bench_train.py --levers`).
    Has no effect once TensorFlow is imported in this process.
    """
    os.environ.setdefault(ONEDNN, "1")
