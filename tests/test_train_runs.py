"""Run folders that lose nothing: --fresh keeps the old run until the new one has a checkpoint, one run per
folder, clear errors for bad resumes and unwritable places, and a loss that stops being a number."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from recipe_repl.train import checkpoint
from recipe_repl.train.callbacks import Callback
from recipe_repl.train.commands import train_command
from recipe_repl.train.rundir import RunDir

from recipe_repl.base.errors import UserError
from tests.tiny import EPICURIOUS_SAMPLE, REPO, cached_tiny_onnx, tiny_config

pytestmark = pytest.mark.slow

SMALL = ["--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--vocab-size", "300", "--embedding-dim", "8", "--units", "8",
         "--seq-len", "20", "--epochs", "1", "--quiet"]


@pytest.fixture()
def old_run(tiny_run_dir: Path, tmp_path: Path) -> Path:
    """A copy of a finished run, with a file of the user's beside it."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run_dir)
    (run_dir / "notes.txt").write_text("mine")
    return run_dir


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def invoke(args: list[str]):
    return CliRunner().invoke(train_command, args)


def refuses_writes(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return False
    except OSError:
        return True


@pytest.fixture()
def read_only_dir(tmp_path: Path):
    """A folder this process cannot write in: a chmod 555 folder, or (as root, where chmod stops nothing) /sys."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if refuses_writes(folder):
            yield folder
            return
        if Path("/sys").is_dir() and refuses_writes(Path("/sys")):
            yield Path("/sys")
            return
        pytest.skip("no read-only folder: running as root (chmod does not stop writes) and /sys takes writes")
    finally:
        folder.chmod(0o755)


# --- --fresh ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [["--vocab-size", "1"], ["--data", "text:EMPTY"]])
def test_fresh_that_fails_before_training_keeps_the_old_run(old_run: Path, tmp_path: Path, bad: list[str]):
    (tmp_path / "empty.txt").write_text("")
    before = snapshot(old_run)
    args = [*SMALL, "--out", str(old_run), "--fresh", *bad]
    r = invoke([a.replace("EMPTY", str(tmp_path / "empty.txt")) for a in args])
    assert isinstance(r.exception, UserError), r.output
    assert snapshot(old_run) == before  # every file as it was, nothing set aside left over


def test_fresh_interrupted_in_its_first_epoch_puts_the_old_run_back(old_run: Path):
    from recipe_repl.train.loop import train

    before = snapshot(old_run)
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(units=8), old_run, quiet=True, stream=out, fresh=True, stop_after_steps=2)
    assert snapshot(old_run) == before
    assert "previous run" in out.getvalue() and "is kept" in out.getvalue()


def test_a_fresh_run_killed_outright_is_recovered_on_the_next_start(old_run: Path):
    from recipe_repl.train.loop import train

    before = snapshot(old_run)
    aside = old_run / ".previous-run"  # what a --fresh run killed with -9 in its first epoch leaves
    aside.mkdir()
    for name in ("config.json", "vocab.json", "checkpoint.weights.h5", "optimizer.npz", "log.csv",
                 "corpus.json", "training.json", "loss_curve.png", "first_epoch.json"):
        os.replace(old_run / name, aside / name)
    (old_run / "config.json").write_text('{"units": 8}')  # the new run had begun writing
    out = io.StringIO()
    with pytest.raises(UserError, match="already holds a training run"):
        train(tiny_config(), old_run, quiet=True, stream=out)
    assert "restored the previous run" in out.getvalue()
    assert snapshot(old_run) == before


# --- one run per folder --------------------------------------------------------------------------------------------


def test_a_second_run_into_a_folder_in_use_fails_at_once_naming_the_first(tmp_path: Path):
    from recipe_repl.train.loop import train

    run_dir = tmp_path / "shared"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    first = subprocess.Popen([sys.executable, "-m", "recipe_repl", "train", *SMALL, "--out", str(run_dir)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = run_dir / ".lock"
        for _ in range(600):  # the first run takes the lock before it imports TensorFlow
            if lock.exists() and lock.read_text().strip():
                break
            time.sleep(0.05)
        with pytest.raises(UserError, match=rf"in use by another training run \(pid {first.pid}\)"):
            train(tiny_config(), run_dir, quiet=True)
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert RunDir(run_dir).config().units == 8 and len(RunDir(run_dir).log_rows()) == 1  # the first run's, whole
    assert not lock.exists()


# --- resume ----------------------------------------------------------------------------------------------------


def test_resume_with_a_checkpoint_that_does_not_match_its_config(old_run: Path):
    config = json.loads((old_run / "config.json").read_text())
    (old_run / "config.json").write_text(json.dumps(config | {"units": 64}))
    r = invoke(["--out", str(old_run), "--resume", "--epochs", "3"])
    assert isinstance(r.exception, UserError), r.output
    assert "cannot resume from" in str(r.exception) and "does not match" in str(r.exception)
    assert "\n" not in str(r.exception)


def test_resume_with_a_truncated_checkpoint(old_run: Path):
    weights = old_run / "checkpoint.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    r = invoke(["--out", str(old_run), "--resume", "--epochs", "3"])
    assert isinstance(r.exception, UserError), r.output
    assert "cannot resume from" in str(r.exception) and "\n" not in str(r.exception)


def test_resume_names_flags_that_differ_from_the_run(old_run: Path):
    r = invoke(["--out", str(old_run), "--resume", "--units", "64", "--no-mask", "--epochs", "3"])
    assert isinstance(r.exception, UserError), r.output
    message = str(r.exception)
    assert "--units (the run has units = 32)" in message and "--no-mask (the run has mask = True)" in message
    assert "--epochs" not in message
    r = invoke(["--out", str(old_run), "--resume", "--units", "32", "--epochs", "2"])  # the run's own value
    assert r.exit_code == 0, r.output


# --- places that cannot be written ------------------------------------------------------------------------------


def test_train_out_under_a_regular_file(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    r = invoke([*SMALL, "--out", str(tmp_path / "file" / "run")])
    assert isinstance(r.exception, UserError), r.output
    assert "cannot create run folder" in str(r.exception) and "is not a folder" in str(r.exception)


def test_train_out_in_a_read_only_folder(read_only_dir: Path):
    r = invoke([*SMALL, "--out", str(read_only_dir / "run")])
    assert isinstance(r.exception, UserError), r.output
    assert "cannot create run folder" in str(r.exception)
    if read_only_dir.name == "read-only":  # an existing run folder that cannot be written
        r = invoke([*SMALL, "--out", str(read_only_dir)])
        assert isinstance(r.exception, UserError) and "cannot write in run folder" in str(r.exception)


def test_export_out_in_a_read_only_folder_fails_before_converting(tiny_run_dir: Path, read_only_dir: Path,
                                                                    tmp_path: Path):
    from recipe_repl.export.exporter import export_run

    with pytest.raises(UserError, match="cannot write"):
        export_run(tiny_run_dir, read_only_dir / "m.onnx", quiet=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        export_run(tiny_run_dir, tmp_path / "file" / "m.onnx", quiet=True)


def test_export_cli_into_a_read_only_folder_is_one_line(tiny_run_dir: Path, read_only_dir: Path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "recipe_repl", "export", str(tiny_run_dir), "--out",
                        str(read_only_dir / "m.onnx")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: cannot write")


# --- a loss that is no longer a number ------------------------------------------------------------------------------


class PoisonAtEpoch(Callback):
    """Makes the output layer's bias NaN as epoch `epoch` begins: its first loss is NaN on any CPU.

    A learning rate of 1e30 diverges to NaN on some CPUs and to a finite 5e30 on others (oneDNN's
    arithmetic): a non-finite value put in by hand does not depend on the machine.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.model = None

    def set_model(self, model, vocab) -> None:
        self.model = model

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        if epoch == self.epoch:
            bias = self.model.get_layer("logits").bias
            bias.assign(np.full(bias.shape, np.nan, dtype=np.float32))


def test_a_diverging_loss_stops_training_without_a_checkpoint(tmp_path: Path):
    from recipe_repl.train.loop import train

    with pytest.raises(UserError, match=r"the loss became nan in epoch 1 \(step 1\); no checkpoint was written"):
        train(tiny_config(epochs=1), tmp_path / "r", quiet=True, extra_callbacks=[PoisonAtEpoch(1)])
    assert not RunDir(tmp_path / "r").checkpoint_file.exists()


def test_a_loss_that_diverges_later_keeps_the_last_good_checkpoint(old_run: Path):
    from recipe_repl.train.loop import train

    weights = (old_run / "checkpoint.weights.h5").read_bytes()
    with pytest.raises(UserError, match="the loss became nan in epoch 3 .*the checkpoint of epoch 2 is kept"):
        train(tiny_config(epochs=3), old_run, resume=True, quiet=True, extra_callbacks=[PoisonAtEpoch(3)])
    assert (old_run / "checkpoint.weights.h5").read_bytes() == weights
    assert checkpoint.epoch_of(old_run / "checkpoint.weights.h5") == 2
    assert [row["epoch"] for row in RunDir(old_run).log_rows()] == [1, 2]


def test_learning_rate_nan_is_refused(tmp_path: Path):
    r = invoke([*SMALL, "--out", str(tmp_path / "r"), "--learning-rate", "nan"])
    assert isinstance(r.exception, UserError) and "--learning-rate" in str(r.exception)
    assert not (tmp_path / "r").exists()  # nothing left behind


# --- permissions ---------------------------------------------------------------------------------------------------


def test_run_files_and_exports_get_the_umask_permissions(tiny_run_dir: Path, tmp_path_factory):
    from recipe_repl.base import atomic

    expected = 0o666 & ~atomic.umask()
    run = RunDir(tiny_run_dir)
    for f in (run.config_file, run.checkpoint_file, run.optimizer_file, run.log_file, run.curve_file):
        assert f.stat().st_mode & 0o777 == expected, f.name
    assert cached_tiny_onnx(tmp_path_factory).stat().st_mode & 0o777 == expected
