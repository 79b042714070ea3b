"""`make lecture-model`: the lecture's exact settings on the stored Epicurious copy, end to end on the
29-record sample put where `recipe-repl data epicurious` stores the real file (tiny epochs through a
make variable), then resumed by running it again; and the lecture's published tables as package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_repl.models import lecture

from recipe_repl.model.engine import OnnxEngine
from tests.tiny import EPICURIOUS_SAMPLE, REPO


def _make(tmp_path: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    """`make lecture-model` with this interpreter's venv, without reinstalling it (-o the install stamp)."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed-dev", "lecture-model",
                           f"BIN={Path(sys.executable).parent}", f"LECTURE_RUN={tmp_path / 'lecture'}", *variables],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lecture_model_on_the_sample_then_resume(tmp_path: Path):
    stored = tmp_path / "data" / "recipe-repl" / "full_format_recipes.json"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(EPICURIOUS_SAMPLE.read_bytes())
    done = _make(tmp_path, "LECTURE_EPOCHS=1")
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "lecture"
    config = json.loads((run / "config.json").read_text())
    for key, value in lecture.SETTINGS.items():
        if key != "optimizer":
            assert config[key] == (value if key != "epochs" else 1), key
    assert config["data"] == "epicurious" and config["mask"] is False and config["dropout"] == 0.0
    engine = OnnxEngine(run / "lecture.onnx", provider="cpu")
    assert engine.info.config["embedding_dim"] == 100 and engine.info.config["units"] == 128
    assert "29 recipes" not in done.stderr and "read 29, used 29" in done.stderr  # the whole sample, nothing dropped

    again = _make(tmp_path, "LECTURE_EPOCHS=2")  # interrupted or done: running it again continues the run
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after epoch 1/2" in again.stderr
    assert [row.split(",")[0] for row in (run / "log.csv").read_text().splitlines()[1:]] == ["1", "2"]


def test_the_lecture_tables_are_data_with_their_source():
    assert "Generative Deep Learning" in lecture.SOURCE
    roast = lecture.table("recipe for roast", 1.0)
    assert roast is not None and roast.rows[0] == ("turkey", 0.228) and not roast.derived
    chop = lecture.table("recipe for roasted vegetables | chop 1 /", 0.2)
    assert chop is not None and chop.derived and [w for w, _ in chop.rows] == ["2", "4", "3"]
    # the lecture's rule, p ** (1 / T) normalised, over the rows given; the left-out words bound the error
    p = [0.535 ** 5, 0.298 ** 5, 0.131 ** 5]
    assert chop.rows[0][1] == pytest.approx(p[0] / sum(p))
    assert chop.max_error < 0.001 < lecture.table("recipe for roast", 0.2).max_error < 0.03  # type: ignore[union-attr]
    assert lecture.table("recipe for chocolate ice cream |", 1.0) is None  # no published table here
    assert set(lecture.PROMPTS) >= {t.prompt for t in lecture.TABLES}
