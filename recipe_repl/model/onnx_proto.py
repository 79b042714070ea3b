"""A small, bounded reader of the ONNX protobuf: the graph's nodes, initializers and metadata, no `onnx`.

ONNX Runtime runs a model but never hands its weights back, and the `onnx` package is an export-time
dependency the runtime does not install. What the LSTM views need is a few fields of the protobuf
wire format (https://protobuf.dev/programming-guides/encoding/), read here in pure Python:

    ModelProto      7 graph, 14 metadata_props (key 1, value 2)
    GraphProto      1 node, 5 initializer, 11 input, 12 output (ValueInfoProto: 1 name)
    NodeProto       1 input, 2 output, 3 name, 4 op_type, 5 attribute, 7 domain
    AttributeProto  1 name, 2 f, 3 i, 4 s, 8 ints, 9 strings
    TensorProto     1 dims, 2 data_type, 4 float_data, 5 int32_data, 7 int64_data, 8 name, 9 raw_data,
                    13 external_data, 14 data_location

A model file is untrusted: every length is checked against what is left, sizes are bounded, nesting
is not followed beyond the fields above, and a tensor whose data lives in another file is refused
(its path is never read). Anything malformed is one `ModelError` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recipe_repl.base import reading
from recipe_repl.base.errors import ModelError

MAX_DIMS = 8
MAX_ELEMENTS = 2**28  # one tensor: 1 GiB of float32

# TensorProto.DataType → numpy dtype (little-endian, as ONNX stores raw_data)
DTYPES: dict[int, str] = {1: "<f4", 2: "u1", 3: "i1", 5: "<i2", 6: "<i4", 7: "<i8", 10: "<f2", 11: "<f8"}
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Tensor:
    """An initializer: its name, shape, element type and the bytes of its values (not yet decoded)."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    raw: bytes = b""
    floats: tuple[np.ndarray, ...] = ()  # float_data pieces, when the values are not in raw_data
    ints: tuple[int, ...] = ()  # int32_data / int64_data

    def array(self) -> np.ndarray:
        """The values as a numpy array of `dims` (a ModelError when they do not fill it)."""
        dtype = DTYPES.get(self.data_type)
        if dtype is None:
            raise ModelError(f"tensor {self.name!r} has an element type this reader does not know ({self.data_type})")
        count = int(np.prod(self.dims, dtype=np.int64)) if self.dims else 1
        if self.raw:
            if len(self.raw) != count * np.dtype(dtype).itemsize:
                raise ModelError(f"tensor {self.name!r}: {len(self.raw)} bytes of data for shape {list(self.dims)}")
            values = np.frombuffer(self.raw, dtype=dtype)
        else:
            source = (np.concatenate(self.floats) if self.floats else np.zeros(0, np.float32)) \
                if self.data_type == 1 else np.asarray(self.ints, dtype=np.int64)
            if len(source) != count:
                raise ModelError(f"tensor {self.name!r}: {len(source)} values for shape {list(self.dims)}")
            values = source.astype(dtype)
        return values.reshape(self.dims).copy()


@dataclass(frozen=True)
class Node:
    """One graph node: op type, domain, inputs and outputs (names), and its simple attributes."""

    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """What the reader keeps of a model file."""

    nodes: tuple[Node, ...]
    initializers: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    metadata: dict[str, str]


def read_model(path: Path | str, metadata_only: bool = False) -> Graph:
    """Read a model file's graph and metadata (`metadata_only`: skip the graph)."""
    path = Path(path)
    data = reading.read_bytes(path, reading.MODEL, ModelError)  # the one bounded reader: regular, ≤ 2 GiB
    try:
        return parse_model(data, metadata_only)
    except _Malformed as exc:
        raise ModelError(f"model {path} is not a readable ONNX file: {exc}") from None


class _Malformed(ValueError):
    """A wire-format error, turned into one ModelError line by `read_model`."""


def parse_model(data: bytes, metadata_only: bool = False) -> Graph:
    """Parse a serialized ModelProto (raises _Malformed)."""
    graph: bytes | None = None
    metadata: dict[str, str] = {}
    for number, _wire, value in _fields(memoryview(data)):
        if number == 7 and not metadata_only:
            graph = _bytes(value)
        elif number == 14:
            entry = {n: _text(v) for n, _w, v in _fields(_view(value)) if n in (1, 2)}
            metadata[entry.get(1, "")] = entry.get(2, "")
    if graph is None:
        return Graph((), {}, (), (), metadata)
    nodes: list[Node] = []
    inits: dict[str, Tensor] = {}
    inputs: list[str] = []
    outputs: list[str] = []
    for number, _wire, value in _fields(memoryview(graph)):
        if number == 1:
            nodes.append(_node(_view(value)))
        elif number == 5:
            tensor = _tensor(_view(value))
            inits[tensor.name] = tensor
        elif number in (11, 12):
            name = next((_text(v) for n, _w, v in _fields(_view(value)) if n == 1), "")
            (inputs if number == 11 else outputs).append(name)
    return Graph(tuple(nodes), inits, tuple(inputs), tuple(outputs), metadata)


def _node(buf: memoryview) -> Node:
    ins: list[str] = []
    outs: list[str] = []
    op, domain = "", ""
    attrs: dict[str, object] = {}
    for number, _wire, value in _fields(buf):
        if number == 1:
            ins.append(_text(value))
        elif number == 2:
            outs.append(_text(value))
        elif number == 4:
            op = _text(value)
        elif number == 7:
            domain = _text(value)
        elif number == 5:
            name, attr = _attribute(_view(value))
            attrs[name] = attr
    return Node(op, domain, tuple(ins), tuple(outs), attrs)


def _attribute(buf: memoryview) -> tuple[str, object]:
    """An attribute's name and value: a float, an int, bytes, or a tuple of ints or of bytes."""
    name: str = ""
    value: object = None
    ints: list[int] = []
    strings: list[bytes] = []
    for number, wire, v in _fields(buf):
        if number == 1:
            name = _text(v)
        elif number == 2 and wire == _I32:
            value = float(np.frombuffer(_bytes(v), "<f4")[0])
        elif number == 3 and wire == _VARINT:
            value = _signed(int(v) if isinstance(v, int) else 0)
        elif number == 4:
            value = _bytes(v)
        elif number == 8:
            ints.extend(_signed(i) for i in _repeated_varints(wire, v))
        elif number == 9:
            strings.append(_bytes(v))
    if ints:
        value = tuple(ints)
    elif strings:
        value = tuple(strings)
    return name, value


def _tensor(buf: memoryview) -> Tensor:
    dims: list[int] = []
    name, data_type, raw = "", 0, b""
    floats: list[np.ndarray] = []
    ints: list[int] = []
    for number, wire, value in _fields(buf):
        if number == 1:
            dims.extend(_signed(d) for d in _repeated_varints(wire, value))
        elif number == 2 and isinstance(value, int):
            data_type = value
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = _bytes(value)
        elif number == 4:
            floats.append(_fixed32s(wire, value))
        elif number in (5, 7):
            ints.extend(_signed(i) for i in _repeated_varints(wire, value))
        elif number == 13 or (number == 14 and value == 1):
            raise _Malformed(f"tensor {name or '?'} keeps its data in an external file (refused: a model's "
                             "own file must hold its weights)")
    if len(dims) > MAX_DIMS or any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > MAX_ELEMENTS:
        raise _Malformed(f"tensor {name!r} has an unreasonable shape {dims}")
    return Tensor(name, tuple(dims), data_type, raw, tuple(floats), tuple(ints))


# --- the wire format --------------------------------------------------------------------------------

_Value = int | memoryview


def _fields(buf: memoryview) -> list[tuple[int, int, _Value]]:
    """(field number, wire type, value) of every field of one message: an int or a slice of `buf`."""
    out: list[tuple[int, int, _Value]] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            out.append((number, wire, value))
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if size > end - pos:
                raise _Malformed("a field runs past the end of its message")
            out.append((number, wire, buf[pos:pos + size]))
            pos += size
        elif wire in (_I32, _I64):
            size = 4 if wire == _I32 else 8
            if size > end - pos:
                raise _Malformed("a field runs past the end of its message")
            out.append((number, wire, buf[pos:pos + size]))
            pos += size
        else:  # groups (3, 4) are not used by ONNX; 6, 7 do not exist
            raise _Malformed(f"unsupported wire type {wire}")
    return out


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("a number runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _signed(value: int) -> int:
    """A varint read as int64 (negative numbers take ten bytes, two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _repeated_varints(wire: int, value: _Value) -> list[int]:
    if wire == _VARINT and isinstance(value, int):
        return [value]
    if wire != _LEN or isinstance(value, int):
        raise _Malformed("a list of numbers has the wrong wire type")
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(number)
        if len(out) > MAX_ELEMENTS:
            raise _Malformed("a list of numbers is too long")
    return out


def _fixed32s(wire: int, value: _Value) -> np.ndarray:
    """Packed float32s (or one, unpacked)."""
    if isinstance(value, int) or wire not in (_LEN, _I32) or len(value) % 4:
        raise _Malformed("a list of floats has the wrong size or wire type")
    return np.frombuffer(bytes(value), "<f4")


def _view(value: _Value) -> memoryview:
    if isinstance(value, int):
        raise _Malformed("a message field holds a number")
    return value


def _bytes(value: _Value) -> bytes:
    return bytes(_view(value))


def _text(value: _Value) -> str:
    return _bytes(value).decode("utf-8", errors="replace")
