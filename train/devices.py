"""Which devices `recipe-repl train` runs on, in one line, and a warning when the machine has an NVIDIA
GPU that TensorFlow cannot see (the usual cause: the CPU-only `tensorflow-cpu` of the `train` extra)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NVIDIA_PROC = Path("/proc/driver/nvidia")


@dataclass(frozen=True)
class Devices:
    """What TensorFlow sees, and what the machine has."""

    gpus: tuple[str, ...]  # TensorFlow's GPUs, e.g. "GPU:0 NVIDIA H200"
    cpu_cores: int  # logical cores this process may use
    system_gpus: tuple[str, ...]  # NVIDIA GPUs the driver lists, whether TensorFlow sees them or not
    cuda_build: bool  # TensorFlow was built with CUDA (False for tensorflow-cpu)

    def line(self, strategy: str = "default") -> str:
        """One line for the user: `devices: CPU (2 logical cores)` or `devices: GPU:0 NVIDIA …`."""
        if not self.gpus:
            return f"devices: CPU ({self.cpu_cores} logical core{'s' if self.cpu_cores != 1 else ''})"
        if strategy == "default" and len(self.gpus) > 1:
            return f"devices: {self.gpus[0]} (1 of {len(self.gpus)} GPUs; --strategy mirrored uses all)"
        return "devices: " + ", ".join(self.gpus)

    def warning(self) -> str | None:
        """A warning when the machine has a GPU that TensorFlow cannot see, saying what to install."""
        if self.gpus or not self.system_gpus:
            return None
        which = self.system_gpus[0] + (f" and {len(self.system_gpus) - 1} more" if len(self.system_gpus) > 1 else "")
        if not self.cuda_build:
            return (f"warning: this machine has a GPU ({which}) but the installed TensorFlow is CPU-only "
                    "(tensorflow-cpu, from the 'train' extra), so training runs on the CPU; to train on the GPU: "
                    "pip uninstall tensorflow-cpu && pip install 'recipe-repl[train-gpu]'")
        return (f"warning: this machine has a GPU ({which}) but TensorFlow cannot see it, so training runs on the "
                "CPU; check the NVIDIA driver and that TensorFlow's CUDA libraries are installed "
                "(pip install 'recipe-repl[train-gpu]')")


def system_gpus(smi: str = "nvidia-smi", proc: Path = NVIDIA_PROC) -> tuple[str, ...]:
    """NVIDIA GPUs the machine has: `nvidia-smi -L` names them; without it, the driver's /proc entries."""
    exe = shutil.which(smi)
    if exe:
        try:
            out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        # "GPU 0: NVIDIA H200 (UUID: GPU-…)" → "NVIDIA H200"
        names = [ln.split(":", 1)[1].split("(UUID")[0].strip() for ln in out.splitlines()
                 if ln.startswith("GPU ") and ":" in ln]
        if names:
            return tuple(names)
    found = []
    for info in sorted(proc.glob("gpus/*/information")):
        model = next((ln.split(":", 1)[1].strip() for ln in _lines(info) if ln.startswith("Model:")), "")
        found.append(model or "an NVIDIA GPU")
    return tuple(found)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def cpu_cores() -> int:
    """Logical cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def detect(tf: Any, find_system_gpus: Callable[[], tuple[str, ...]] = system_gpus) -> Devices:
    """Ask TensorFlow (`tf`, already imported) which GPUs it sees, and the machine which it has."""
    gpus = []
    for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            name = tf.config.experimental.get_device_details(dev).get("device_name", "")
        except Exception:  # details are best effort; the device itself is what counts
            name = ""
        gpus.append(f"GPU:{i} {name}".strip())
    system = () if gpus else tuple(find_system_gpus())  # only needed for the warning
    return Devices(gpus=tuple(gpus), cpu_cores=cpu_cores(), system_gpus=system,
                   cuda_build=bool(tf.test.is_built_with_cuda()))
