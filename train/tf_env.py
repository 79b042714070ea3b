"""The environment TensorFlow reads once, when it is first imported: set it before that import.

TensorFlow's C++ side prints INFO and WARNING lines (oneDNN, CPU features, absl's "All log messages
before absl::InitializeLog()" notice, the tf.data memory patch) between the tool's own lines. They
say nothing a user of `recipe-repl train/export/eval` can act on, so they are off unless --verbose.
"""

from __future__ import annotations

import os
import re
import sys

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


# What TensorFlow's C++ side prints on import whatever TF_CPP_MIN_LOG_LEVEL says (seen with TF 2.21 when
# oneDNN is turned on explicitly): absl's notice and the "oneDNN custom operations are on" line.
_IMPORT_NOTICES = re.compile(r"All log messages before absl::InitializeLog\(\)|oneDNN custom operations are on")


def import_quietly(verbose: bool = False) -> None:
    """Import TensorFlow, dropping the notices it prints on import (all of them with `verbose`).

    Anything else it writes to stderr meanwhile is passed on. Its C++ side writes to file
    descriptor 2 directly, so that descriptor is captured around the import.
    """
    if verbose or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [ln for ln in text.splitlines(keepends=True) if not _IMPORT_NOTICES.search(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
