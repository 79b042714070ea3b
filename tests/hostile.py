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
