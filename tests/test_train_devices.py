"""`recipe-repl train` says which devices it uses and warns about a GPU TensorFlow cannot see; train,
export and eval print only the tool's own lines unless --verbose (real TensorFlow, real subprocesses)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_repl.train import devices
from recipe_repl.train.devices import Devices

from tests.tiny import EPICURIOUS_SAMPLE

REPO = Path(__file__).resolve().parents[1]
H200 = "GPU 0: NVIDIA H200 (UUID: GPU-5d1c2f0e-0000-0000-0000-000000000000)"


@pytest.mark.slow
def test_device_line_with_the_real_tensorflow():
    import tensorflow as tf

    found = devices.detect(tf, find_system_gpus=lambda: ())
    tf_gpus = tf.config.list_physical_devices("GPU")
    assert found.cuda_build == tf.test.is_built_with_cuda()
    if tf_gpus:
        assert found.line().startswith("devices: GPU:0")
    else:
        cores = len(os.sched_getaffinity(0))
        assert found.line() == f"devices: CPU ({cores} logical core{'s' if cores > 1 else ''})"
    assert found.warning() is None  # the machine, as injected, has no GPU


@pytest.mark.slow
def test_a_gpu_tensorflow_cannot_see_gets_a_warning_naming_the_extra():
    import tensorflow as tf

    found = devices.detect(tf, find_system_gpus=lambda: ("NVIDIA H200",))
    if tf.config.list_physical_devices("GPU"):
        assert found.warning() is None
        return
    warning = found.warning()
    assert warning is not None and warning.startswith("warning: this machine has a GPU (NVIDIA H200)")
    if not tf.test.is_built_with_cuda():  # tensorflow-cpu, as the `train` extra installs
        assert "CPU-only (tensorflow-cpu" in warning and "pip install 'recipe-repl[train-gpu]'" in warning


def test_device_lines_and_warnings():
    cpu = Devices(gpus=(), cpu_cores=1, system_gpus=(), cuda_build=False)
    assert (cpu.line(), cpu.warning()) == ("devices: CPU (1 logical core)", None)
    two = Devices(gpus=("GPU:0 NVIDIA H200", "GPU:1 NVIDIA H200"), cpu_cores=16, system_gpus=(), cuda_build=True)
    assert two.line("mirrored") == "devices: GPU:0 NVIDIA H200, GPU:1 NVIDIA H200"
    assert two.line("default") == "devices: GPU:0 NVIDIA H200 (1 of 2 GPUs; --strategy mirrored uses all)"
    assert two.warning() is None
    unseen = Devices(gpus=(), cpu_cores=16, system_gpus=("NVIDIA H200", "NVIDIA H200"), cuda_build=True)
    assert unseen.warning().startswith(  # type: ignore[union-attr]
        "warning: this machine has a GPU (NVIDIA H200 and 1 more) but TensorFlow cannot see it")
    assert "NVIDIA driver" in unseen.warning()  # type: ignore[operator]


def test_system_gpus_from_nvidia_smi_or_the_driver(tmp_path: Path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{H200}'\necho '  MIG 1g.18gb Device 0: (UUID: MIG-1)'\n"
                   "echo 'GPU 1: NVIDIA H200 (UUID: GPU-2)'\n")
    smi.chmod(0o755)
    assert devices.system_gpus(smi=str(smi), proc=tmp_path / "none") == ("NVIDIA H200", "NVIDIA H200")
    info = tmp_path / "proc" / "gpus" / "0000:01:00.0" / "information"
    info.parent.mkdir(parents=True)
    info.write_text("Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:  \t 42\n")
    assert devices.system_gpus(smi=str(tmp_path / "missing"), proc=tmp_path / "proc") == ("NVIDIA A100-SXM4-40GB",)
    assert devices.system_gpus(smi=str(tmp_path / "missing"), proc=tmp_path / "none") == ()


# --- only the tool's own lines ----------------------------------------------------------------------

# What recipe-repl itself writes during train, export and eval: each line starts one of these ways.
TOOL_LINES = re.compile(
    r"(devices: |warning: this machine has a GPU |corpus \S+: read \d+|[\w:.+-]*:? ?\d+ train / \d+ validation"
    r"|epoch \d+|sample\b|probe “|kept epoch \d+: |trained \d+ epochs|parity: |3-gram counts: |wrote \S+|\S+\.onnx: \d+ held-out recipes|model +tokens"
    r"|LSTM \(ONNX\) |Kneser-Ney 3-gram |perplexity ratio |  \S+: \d+ recipes|title use: |samples from \d+ held-out titles|  \S+: (LSTM |T=|title words ))")
# What TensorFlow, absl and Python write on their own: log lines (I0000 00:00:… file.cc:12]),
# absl's pre-init notice, and Python warnings (file.py:12: SomeWarning: …).
FOREIGN_LINES = re.compile(r"([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl"
                           r"|.*\.(cc|h):\d+\]|.*\.py:\d+: \w*Warning\b|\s*warnings\.warn\(|.*oneDNN)")


def _recipe_repl(args: list[str], tmp_path: Path) -> list[str]:
    """Run `recipe-repl ARGS` as a user would (fresh process, TensorFlow's log level not set, a machine
    whose nvidia-smi lists a GPU); return its stdout and stderr lines."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "nvidia-smi").write_text(f"#!/bin/sh\necho '{H200}'\n")
    (fake_bin / "nvidia-smi").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP_", "PYTHONWARNINGS"))}
    env |= {"PYTHONPATH": str(REPO), "PATH": f"{fake_bin}{os.pathsep}{env.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "recipe_repl", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (proc.stdout + proc.stderr).splitlines()


def _foreign(lines: list[str]) -> list[str]:
    return [ln for ln in lines if FOREIGN_LINES.match(ln) or not TOOL_LINES.match(ln)]


TINY_ARGS = ["--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--vocab-size", "300", "--embedding-dim", "16",
             "--units", "32", "--seq-len", "40", "--epochs", "1", "--batch-size", "8"]


@pytest.mark.slow
def test_train_export_eval_print_only_their_own_lines(tmp_path: Path):
    lines = _recipe_repl(["train", *TINY_ARGS, "--keep-epochs", "--out", "run"], tmp_path)
    assert _foreign(lines) == []
    assert any(ln.startswith("probe “") for ln in lines) and any(ln.startswith("kept epoch 1: ") for ln in lines)
    assert lines[0].startswith("devices: ")
    if lines[0].startswith("devices: CPU"):  # the fake nvidia-smi lists a GPU this TensorFlow cannot see
        assert lines[1].startswith("warning: this machine has a GPU (NVIDIA H200)")
    assert any(ln.startswith("epoch 1/1: loss") for ln in lines) and lines[-1].startswith("trained 1 epochs")

    lines = _recipe_repl(["export", "run", "--out", "tiny.onnx"], tmp_path)
    assert _foreign(lines) == [] and lines[-1].startswith("wrote tiny.onnx")
    lines = _recipe_repl(["eval", "tiny.onnx", "--data", f"epicurious:{EPICURIOUS_SAMPLE}"], tmp_path)
    assert _foreign(lines) == [] and any(ln.startswith("perplexity ratio LSTM / 3-gram:") for ln in lines)
    assert any(ln.startswith("title use: ") for ln in lines)


@pytest.mark.slow
def test_verbose_keeps_tensorflows_lines(tmp_path: Path):
    lines = _recipe_repl(["train", *TINY_ARGS, "--out", "run", "--quiet", "--verbose"], tmp_path)
    foreign = _foreign(lines)
    assert foreign, "expected TensorFlow's own log lines with --verbose"
    assert any(re.match(r"[IWE]\d{4} ", ln) for ln in foreign)  # TensorFlow's C++ log shape


def test_import_drops_only_tensorflows_import_notices(tmp_path: Path):
    # A stand-in `tensorflow` that writes to file descriptor 2 as TensorFlow's C++ side does on import.
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. You may see slightly different\\n')\n"
        "os.write(2, b'E0000 something the user must see\\n')\n"
    )
    code = ("import sys; from recipe_repl.train.tf_env import import_quietly; "
            "import_quietly(sys.argv[1] == 'verbose'); print('after', file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    quiet = subprocess.run([sys.executable, "-c", code, "quiet"], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines() == ["E0000 something the user must see", "after"]
    loud = subprocess.run([sys.executable, "-c", code, "verbose"], capture_output=True, text=True, env=env)
    assert len(loud.stderr.splitlines()) == 4 and "oneDNN custom operations" in loud.stderr
