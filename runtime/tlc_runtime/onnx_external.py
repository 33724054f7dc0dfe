"""Refuse ONNX models that keep tensors in external data files, without the onnx package.

A model loaded from memory resolves external data against the working directory (ONNX Runtime and
OpenVINO both do), so those bytes would escape the manifest's hashes. tlc never writes external
data (its models are far below protobuf's 2 GB limit), so the runtime refuses it outright.

The scan walks the protobuf wire format along the only paths that hold tensors (graph initializers,
Constant-node and other tensor attributes, sub-graphs, functions, training graphs, sparse tensors)
and skips every other field without decoding it: a linear pass over the bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import BundleError

# message kind -> {field number: kind of the sub-message it holds}; the fields that can reach a TensorProto
_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _TRAINING, _FUNCTION = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _FUNCTION: {7: _NODE, 11: _ATTR},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class _Malformed(ValueError):
    pass


def check_no_external_data(model: bytes, artifact_name: str, file_name: str) -> None:
    """Raise BundleError when the serialized ONNX ``model`` is unreadable or uses external data."""
    try:
        external = _external_tensors(memoryview(model), _MODEL, depth=0)
    except (_Malformed, RecursionError):
        raise BundleError(f"cannot load artifact {artifact_name!r}: {file_name} is not a valid ONNX model; "
                          "rebuild the bundle") from None
    if external:
        name, location = external[0]
        raise BundleError(f"artifact {artifact_name!r}: {file_name} keeps tensor {name!r} in the external data "
                          f"file {location!r}, which tlc bundles do not allow (its bytes are not covered by the "
                          "manifest's hashes); rebuild the bundle with tlc")


def _external_tensors(buf: memoryview, kind: int, depth: int) -> list[tuple[str, str]]:
    """(tensor name, data file) of every external tensor inside the message ``buf`` of ``kind``."""
    if depth > 64:
        raise _Malformed("nesting too deep")
    if kind == _TENSOR:
        return _tensor_location(buf)
    children = _CHILDREN[kind]
    found: list[tuple[str, str]] = []
    for number, value in _fields(buf):
        if number in children and isinstance(value, memoryview):
            found += _external_tensors(value, children[number], depth + 1)
    return found


def _tensor_location(buf: memoryview) -> list[tuple[str, str]]:
    name, location, external = "", "", False
    for number, value in _fields(buf):
        if number == _TENSOR_NAME and isinstance(value, memoryview):
            name = bytes(value).decode("utf-8", "replace")
        elif number == _TENSOR_DATA_LOCATION and value == _EXTERNAL:
            external = True
        elif number == _TENSOR_EXTERNAL_DATA and isinstance(value, memoryview):
            external = True
            entry = dict(_fields(value))  # StringStringEntryProto: 1 key, 2 value
            if bytes(entry.get(1, b"")) == b"location":
                location = bytes(entry.get(2, b"")).decode("utf-8", "replace")
    return [(name, location or "?")] if external else []


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) pairs of one message: ints for varint/fixed fields, slices for the rest."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:  # groups (3, 4) and unknown wire types never occur in ONNX
            raise _Malformed(f"wire type {wire}")
        if pos > end or number == 0:
            raise _Malformed("truncated message")
        yield number, value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 70:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise _Malformed("truncated varint")
