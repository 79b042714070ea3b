"""Training on the real 29-record sample: run-folder contents, checkpoints, resume, masked loss, strategies."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from recipe_repl.train import checkpoint
from recipe_repl.train.commands import train_command
from recipe_repl.train.rundir import RunDir

from recipe_repl.base import atomic
from recipe_repl.base.errors import UserError
from tests.tiny import EPICURIOUS_SAMPLE, REPO, TINY, tiny_config

pytestmark = pytest.mark.slow


def test_run_folder_holds_everything_for_export(tiny_run_dir: Path):
    run = RunDir(tiny_run_dir)
    for f in (run.config_file, run.vocab_file, run.checkpoint_file, run.optimizer_file, run.log_file,
              run.corpus_file, run.training_file, run.curve_file):
        assert f.exists(), f.name
    assert run.curve_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = run.config()
    assert (cfg.vocab_size, cfg.embedding_dim, cfg.units, cfg.seq_len) == (300, 16, 32, 40)
    words, lowercase = run.vocab()
    assert words[:2] == ["", "[UNK]"] and len(words) == 300 and lowercase == "ascii"
    rows = run.log_rows()
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert math.isclose(r["val_perplexity"], math.exp(r["val_loss"]), rel_tol=1e-4)
        assert r["tokens_per_s"] > 0
    assert checkpoint.epoch_of(run.checkpoint_file) == 2
    corpus = json.loads(run.corpus_file.read_text())
    assert (corpus["read"], corpus["used"], corpus["train_recipes"], corpus["val_recipes"]) == (29, 29, 26, 3)
    training = json.loads(run.training_file.read_text())
    assert training["epochs"] == 2 and training["corpus"] == "epicurious:epicurious-sample.json"
    assert set(training["first_epoch_losses"]) == {"train_masked", "train_unmasked", "val_masked", "val_unmasked"}
    assert not [p for p in tiny_run_dir.iterdir() if p.name.startswith(".")]  # no temp files left


def test_kill_mid_epoch_then_resume_matches_an_uninterrupted_run(tiny_run_dir: Path, tmp_path: Path):
    from recipe_repl.train.loop import train

    run_dir = tmp_path / "run"
    steps_per_epoch = math.ceil(26 / TINY["batch_size"])
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(), run_dir, quiet=True, stop_after_steps=steps_per_epoch + 2)
    run = RunDir(run_dir)
    assert checkpoint.epoch_of(run.checkpoint_file) == 1  # only the half-done epoch is lost
    assert [r["epoch"] for r in run.log_rows()] == [1]
    result = train(tiny_config(), run_dir, resume=True, quiet=True)
    assert [r["epoch"] for r in result.history] == [1, 2]
    reference = RunDir(tiny_run_dir).log_rows()
    for got, want in zip(result.history, reference, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], abs=1e-4)
        assert got["val_loss"] == pytest.approx(want["val_loss"], abs=1e-4)
    # a finished run can be extended
    more = train(tiny_config(epochs=3), run_dir, resume=True, quiet=True)
    assert [r["epoch"] for r in more.history] == [1, 2, 3]
    assert [r["epoch"] for r in run.log_rows()] == [1, 2, 3]


def test_run_folder_refuses_a_second_run_and_empty_resume(tiny_run_dir: Path, tmp_path: Path):
    from recipe_repl.train.loop import train

    with pytest.raises(UserError, match="already holds a training run"):
        train(tiny_config(), tiny_run_dir, quiet=True)
    with pytest.raises(UserError, match="nothing to resume"):
        train(tiny_config(), tmp_path / "empty", resume=True, quiet=True)


def test_masked_loss_matches_a_numpy_computation(tiny_run_dir: Path):
    import keras
    import tensorflow as tf
    from recipe_repl.export.convert import load_run
    from recipe_repl.train import preprocess
    from recipe_repl.train.steps import Steps

    loaded = load_run(tiny_run_dir)
    cfg = loaded.config
    layer = preprocess.make_vectorizer(cfg.vocab_size, 120, loaded.words)  # long: padding after the text
    texts = ["Recipe for toast | Toast the bread.", "Recipe for tea | Boil water, add tea, wait 3 minutes."]
    ids = preprocess.vectorize(layer, texts)
    opt = keras.optimizers.Adam()
    opt.build(loaded.model.trainable_variables)
    steps = Steps(tf, keras, loaded.model, opt, tf.distribute.get_strategy(), False)
    masked, unmasked = steps.evaluate(ids, batch_size=2)
    logits = np.asarray(loaded.model(ids[:, :-1]), np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(
        -1, keepdims=True)
    nll = -np.take_along_axis(logp, ids[:, 1:, None].astype(np.int64), -1)[..., 0]
    lengths = (ids != 0).sum(1)  # the text, then the first stop token is target number `length`
    expected_masked = np.mean(np.concatenate([nll[r, : lengths[r]] for r in range(2)]))
    assert masked == pytest.approx(expected_masked, rel=1e-5)
    assert unmasked == pytest.approx(nll.mean(), rel=1e-5)
    assert masked != pytest.approx(unmasked, rel=1e-3)


def test_no_mask_keeps_the_lecture_loss_and_reports_both(tmp_path: Path):
    from recipe_repl.train.loop import train

    result = train(tiny_config(epochs=1, mask=False, seq_len=300), tmp_path / "lecture", quiet=True)
    cfg = RunDir(tmp_path / "lecture").config()
    assert cfg.mask is False and cfg.bucketing is False  # the lecture's fixed-length batches
    both = result.first_epoch_losses
    assert both["val_masked"] != pytest.approx(both["val_unmasked"], rel=1e-3)  # padding is in play at 300


def test_progress_and_samples_go_to_the_stream(tmp_path: Path):
    from recipe_repl.train.loop import train

    out = io.StringIO()
    train(tiny_config(epochs=1, sample_every=1, sample_tokens=10), tmp_path / "r", stream=out)
    text = out.getvalue()
    assert "corpus epicurious:epicurious-sample.json: read 29, used 29, skipped 0" in text
    assert "epoch 1/1: loss" in text and "val_perplexity" in text and "tok/s" in text
    assert "epoch 1 loss both ways: masked" in text
    assert "sample (T=1.0): Recipe for" in text


def test_epoch_samples_come_from_the_runtime_generation_loop(tmp_path: Path):
    """The per-epoch sample is `recipe-repl generate "recipe for" -t 1 --seed (seed + epoch)` on the model."""
    import keras
    from recipe_repl.train.callbacks import keras_engine, sample_text
    from recipe_repl.train.model import build_model

    from recipe_repl.base.settings import Settings
    from recipe_repl.model.vocab import Vocabulary
    from recipe_repl.session.samples import generate_samples

    vocab = Vocabulary.from_list(["", "[UNK]", "recipe", "for", "soup", "|", "boil", "water", "."])
    model = build_model(len(vocab), 8, 8, seed=3)
    model.set_weights([w * 40 for w in model.get_weights()])  # peaked: a few words dominate
    engine = keras_engine(model, vocab)
    text = sample_text(engine, "recipe for", 1.0, 12, seed=9)
    [sample] = generate_samples(engine, "recipe for", Settings(temperature=1.0, max_tokens=12, seed=9))
    assert text == sample.text and text.startswith("Recipe for")
    forward = keras.Model(model.inputs, model.outputs)
    logits = np.asarray(forward(np.array([vocab.encode("recipe for")], np.int32)))[0, -1]
    first = sample.token_ids[0] if sample.token_ids else 0
    assert logits[first] > logits.min()  # a real draw from the model's own logits


def test_cli_errors_are_user_errors(tmp_path: Path):
    runner = CliRunner()
    r = runner.invoke(train_command, ["--data", f"epicurious:{tmp_path / 'nope.json'}", "--out", str(tmp_path / "o")])
    assert isinstance(r.exception, UserError) and "not found" in str(r.exception)
    r = runner.invoke(train_command, ["--out", str(tmp_path / "o"), "--resume"])
    assert isinstance(r.exception, UserError) and "nothing to resume" in str(r.exception)
    r = runner.invoke(train_command, ["--out", str(tmp_path / "o"), "--val-split", "1.5",
                                      "--data", f"epicurious:{EPICURIOUS_SAMPLE}"])
    assert isinstance(r.exception, UserError) and "val-split" in str(r.exception)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path):
    target = tmp_path / "log.csv"
    atomic.write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half a new fi")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]


def test_checkpoint_save_failure_keeps_the_previous_checkpoint(tiny_run_dir: Path, tmp_path: Path):
    import shutil

    run = RunDir(tiny_run_dir)
    weights = tmp_path / "checkpoint.weights.h5"
    opt_file = tmp_path / "optimizer.npz"
    shutil.copy(run.checkpoint_file, weights)
    before = weights.read_bytes()

    class Broken:
        variables: list = []

        def save_weights(self, path):
            Path(path).write_bytes(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError):
        checkpoint.save(Broken(), Broken(), 3, weights, opt_file)
    assert weights.read_bytes() == before
    assert checkpoint.epoch_of(weights) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.weights.h5", "optimizer.npz"]


def test_log_csv_has_one_row_per_epoch(tiny_run_dir: Path):
    with (tiny_run_dir / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"loss", "val_loss", "val_perplexity", "val_loss_unmasked", "tokens_per_s"} <= set(rows[0])


MIRRORED = textwrap.dedent("""
    import io, json, sys
    import tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    from recipe_repl.train.loop import train
    from recipe_repl.train.strategy import make_strategy
    from tests.tiny import tiny_config
    out = {"replicas": make_strategy("mirrored").num_replicas_in_sync}
    for name in ("default", "mirrored"):
        r = train(tiny_config(epochs=1, strategy=name), sys.argv[1] + "/" + name, quiet=True)
        out[name] = r.history[-1]["loss"]
    print(json.dumps(out))
""")


def test_mirrored_strategy_over_two_logical_cpus_matches_default(tmp_path: Path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["mirrored"] == pytest.approx(out["default"], abs=2e-3)


def test_mixed_precision_jit_and_dropout_train_and_export(tmp_path: Path):
    from recipe_repl.export.exporter import export_run
    from recipe_repl.train.loop import train

    result = train(tiny_config(epochs=1, mixed_precision=True, jit_compile=True, dropout=0.3), tmp_path / "r",
                   quiet=True)
    assert math.isfinite(result.history[-1]["loss"]) and math.isfinite(result.history[-1]["val_loss"])
    cfg = RunDir(tmp_path / "r").config()
    assert cfg.mixed_precision and cfg.jit_compile and cfg.dropout == 0.3
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # the policy is restored afterwards
    exported = export_run(tmp_path / "r", tmp_path / "m.onnx", quiet=True)
    assert exported.parity["ok"]


MULTI_WORKER = textwrap.dedent("""
    import json, sys
    from recipe_repl.train.loop import train
    from tests.tiny import tiny_config
    r = train(tiny_config(epochs=1, strategy="multi-worker"), sys.argv[1], quiet=True)
    print(json.dumps({"loss": r.history[-1]["loss"]}))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_two_processes_on_localhost(tmp_path: Path, tiny_run_dir: Path):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO),
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen([sys.executable, "-c", MULTI_WORKER, str(tmp_path / f"w{i}")], env=env,
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=300)
        finally:
            p.kill()
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1])["loss"])
    # both workers report the global loss, equal to a one-process run of the same first epoch
    assert results[0] == pytest.approx(results[1], abs=1e-6)
    assert results[0] == pytest.approx(RunDir(tiny_run_dir).log_rows()[0]["loss"], abs=2e-3)
    assert (tmp_path / "w0" / "checkpoint.weights.h5").exists()  # only the chief writes a run folder
    assert not (tmp_path / "w1").exists()


def test_fresh_discards_a_previous_run(tiny_run_dir: Path, tmp_path: Path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run_dir)
    (run_dir / "notes.txt").write_text("mine")
    args = ["--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--out", str(run_dir), "--vocab-size", "300",
            "--embedding-dim", "8", "--units", "8", "--seq-len", "20", "--epochs", "1", "--quiet"]
    r = CliRunner().invoke(train_command, args)
    assert isinstance(r.exception, UserError) and "already holds" in str(r.exception)
    r = CliRunner().invoke(train_command, [*args, "--fresh"])
    assert r.exit_code == 0, r.output
    assert RunDir(run_dir).config().units == 8 and len(RunDir(run_dir).log_rows()) == 1
    assert (run_dir / "notes.txt").read_text() == "mine"  # only the run's own files are removed
    r = CliRunner().invoke(train_command, [*args, "--fresh", "--resume"])
    assert isinstance(r.exception, UserError) and "contradict" in str(r.exception)
