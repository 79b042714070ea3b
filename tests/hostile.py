"""Helpers for the hostile-input tests (issue 14): a raw-control check independent of the sanitizer, the CLI
in-process on byte streams, and foreign ONNX models built with the `onnx` helper API."""

from __future__ import annotations

import io
import json
import re
import sys
import unicodedata
from pathlib import Path
from unittest import mock

import numpy as np

from recipe_repl.frontends.cli import main
from recipe_repl.model import contract

_RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def raw_controls(data: bytes | str) -> list[str]:
    """Every control, DEL, C1, bidi or other format character in `data` (newlines allowed)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return _RAW.findall(text) + [c for c in text if unicodedata.category(c) in ("Cf", "Cs")]


def run(argv: list[str], stdin: bytes = b"", plugins: bool = False) -> tuple[int, bytes, bytes]:
    """`recipe-repl ARGV` in-process on byte streams (stdout strict UTF-8, as a terminal would get it)."""
    out, err = io.BytesIO(), io.BytesIO()
    streams = {
        "stdin": io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"),
        "stdout": io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        "stderr": io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    }
    with mock.patch.multiple(sys, **streams):  # type: ignore[arg-type]
        try:
            main(argv if plugins else ["--no-plugins", *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
        sys.stdout.flush()
        sys.stderr.flush()
    return code, out.getvalue(), err.getvalue()


def _save(model, path: Path, words: list[str] | None, meta: dict[str, str] | None = None) -> Path:
    import onnx

    if words is not None:
        model.metadata_props.add(key=contract.META_VOCAB, value=json.dumps(words))
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def identity_model(path: Path, words: list[str], token_type: str = "int32") -> Path:
    """tokens → Identity → "logits": loads in ONNX Runtime, carries a vocabulary, is no language model."""
    from onnx import TensorProto, helper

    elem = {"int32": TensorProto.INT32, "float": TensorProto.FLOAT}[token_type]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["tokens"], ["logits"])], "identity",
        [helper.make_tensor_value_info("tokens", elem, ["batch", "time"])],
        [helper.make_tensor_value_info("logits", elem, ["batch", "time"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _save(model, path, words)


def one_wide_model(path: Path, words: list[str]) -> Path:
    """tokens → float logits [batch, time, 1]: the right rank, one column."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["tokens"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["f", "ax"], ["logits"])], "one_wide",
        [helper.make_tensor_value_info("tokens", TensorProto.INT32, ["batch", "time"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "time", 1])],
        [numpy_helper.from_array(np.array([2], dtype=np.int64), "ax")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _save(model, path, words)


def edited(source: Path, path: Path, rename: dict[str, str] | None = None, meta: dict[str, str] | None = None,
           nan_weights: bool = False, fixed_batch: bool = False, outputs_last: bool = False) -> Path:
    """A copy of a model with tensors renamed, metadata replaced, NaN output weights, a fixed batch size, or
    its first output moved last (so that it is no longer found by position)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    rename = rename or {}
    graph = model.graph
    for v in [*graph.input, *graph.output]:
        v.name = rename.get(v.name, v.name)
    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    if nan_weights:
        for i, t in enumerate(graph.initializer):
            if t.name == "Wd":
                graph.initializer[i].CopyFrom(numpy_helper.from_array(
                    np.full(numpy_helper.to_array(t).shape, np.nan, dtype=np.float32), "Wd"))
    if outputs_last:
        first = onnx.ValueInfoProto()
        first.CopyFrom(graph.output[0])
        del graph.output[0]
        graph.output.append(first)
    if fixed_batch:
        graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    if meta:
        kept = [(p.key, p.value) for p in model.metadata_props if p.key not in meta]
        del model.metadata_props[:]
        for k, v in [*kept, *meta.items()]:
            model.metadata_props.add(key=k, value=v)
    return _save(model, path, None)


# --- issue 23: child processes measured by their own peak, and models whose numbers break ----------------------

REPO = Path(__file__).resolve().parents[1]

_PEAK = ("import sys\nfrom recipe_repl.frontends.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
         "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
         "    sys.stderr.write(f'\\nVmHWM {hwm}\\n')\n")


def child(args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None, timeout: float = 120,
          keep_stdout: bool = True, plugins: bool = False):
    """`recipe-repl ARGS` in a child process that reports its own peak resident memory (VmHWM, Linux).

    Returns (exit status, peak MiB, stdout, stderr without the peak line). `keep_stdout=False` sends
    stdout to /dev/null (outputs of hundreds of MB). ru_maxrss would count the test process's own
    peak through fork; VmHWM is the child's alone.
    """
    import os
    import subprocess

    import pytest

    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status (Linux) to read a process's peak memory")
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "0" if plugins else "1",
                **(env or {})}
    r = subprocess.run([sys.executable, "-c", _PEAK, *args], input=stdin, env=full_env, timeout=timeout,
                       stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL, stderr=subprocess.PIPE)
    err, _, hwm = r.stderr.decode("utf-8", "replace").rpartition("\nVmHWM ")
    return r.returncode, int(hwm.split()[0]) / 1024, r.stdout or b"", err.rstrip("\n")


def broken_after_word(path: Path, words: list[str], word: str, value: float = float("nan"), seed: int = 0,
                      likely: str | None = None, units: int = 16) -> Path:
    """A random-weight LSTM whose logits get `value` (NaN, inf) added at every position where `word` is read.

    An extra graph branch: Equal(tokens, id of word) → Where(…, value, 0) → added to the logits, so
    the model is sound until it reads `word` and breaks right after it (its state stays finite).
    `likely` makes that word the most likely next word everywhere (a large output bias), so a
    sample writes it early.
    """
    import tempfile

    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from recipe_repl.export.random_model import build_random_lstm

    with tempfile.TemporaryDirectory() as folder:
        model = onnx.load(str(build_random_lstm(Path(folder) / "m.onnx", words, seed=seed, units=units)))
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["logits_raw" if o == "logits" else o for o in node.output]
    if likely is not None:
        for i, t in enumerate(graph.initializer):
            if t.name == "bd":
                bias = numpy_helper.to_array(t).copy()
                bias[words.index(likely)] += 12.0
                graph.initializer[i].CopyFrom(numpy_helper.from_array(bias, "bd"))
    graph.initializer.extend([
        numpy_helper.from_array(np.array(words.index(word), dtype=np.int32), "bad_id"),
        numpy_helper.from_array(np.array(value, dtype=np.float32), "bad_value"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "ax2"),
    ])
    graph.node.extend([
        helper.make_node("Equal", ["tokens", "bad_id"], ["is_bad"]),
        helper.make_node("Where", ["is_bad", "bad_value", "zero"], ["extra"]),
        helper.make_node("Unsqueeze", ["extra", "ax2"], ["extra3"]),
        helper.make_node("Add", ["logits_raw", "extra3"], ["logits"]),
    ])
    del TensorProto
    return _save(model, path, None)
